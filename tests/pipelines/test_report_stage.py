"""The report stage's input gathering: git state, DVC data version, experiments (no model needed)."""

import subprocess

import yaml

from pipelines import report
from tests.helpers.report_inputs import exp_show_rows
from tests.helpers.repos import repo_env


def git(args, cwd):
    subprocess.run(["git", *args], cwd=cwd, env=repo_env(), check=True, capture_output=True)


def test_git_state_separates_pipeline_outputs_from_source_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("dvc.lock", "params.yaml", "reports/fid.json", "untracked.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a\n")
    git(["init", "-q"], tmp_path)
    git(["add", "dvc.lock", "params.yaml", "reports/fid.json"], tmp_path)
    git(["commit", "-qm", "x"], tmp_path)
    state = report.git_state()
    assert len(state["rev"]) == 40 and state["dirty"] is False and state["outputs"] == []

    (tmp_path / "dvc.lock").write_text("b\n")
    (tmp_path / "reports/fid.json").write_text("b\n")
    state = report.git_state()
    assert state["dirty"] is False and sorted(state["outputs"]) == ["dvc.lock", "reports/fid.json"]

    (tmp_path / "params.yaml").write_text("b\n")
    state = report.git_state()
    assert state["dirty"] is True and state["changes"] == ["params.yaml"]


def test_git_state_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert report.git_state()["rev"] is None


def test_dvc_out_md5(tmp_path):
    from pipelines._stage import dvc_out_md5

    lock = tmp_path / "dvc.lock"
    assert dvc_out_md5("data/prepared", tmp_path) is None
    lock.write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {"prepare": {"outs": [{"path": "data/prepared", "hash": "md5", "md5": "abc.dir"}]}},
            }
        )
    )
    assert dvc_out_md5("data/prepared", tmp_path) == "abc.dir"


def test_pipeline_stages(tmp_path):
    path = tmp_path / "dvc.yaml"
    assert report.pipeline_stages(tmp_path) == []
    path.write_text("stages:\n  prepare:\n    cmd: a\n  train:\n    cmd: b\n")
    assert report.pipeline_stages(tmp_path) == ["prepare", "train"]


def test_experiment_records(monkeypatch):
    monkeypatch.setattr(report, "dvc_experiments", lambda: (exp_show_rows(), None))
    records, error = report.experiment_records()
    assert error is None and [r["name"] for r in records] == ["main", "exp1"]

    monkeypatch.setattr(report, "dvc_experiments", lambda: (exp_show_rows(betas=(0.05,), fids=((1, 2, 3, 4),)), None))
    assert report.experiment_records() == (
        None,
        "no experiments (dvc exp show lists none besides the workspace and its commit)",
    )
    monkeypatch.setattr(report, "dvc_experiments", lambda: (None, "dvc exp show failed: boom"))
    assert report.experiment_records() == (None, "dvc exp show failed: boom")
    monkeypatch.setattr(report, "dvc_experiments", lambda: ({"not": "a list"}, None))
    assert report.experiment_records()[1].startswith("cannot parse dvc exp show output")
