"""make table1 end to end on the tiny config: objectives x seeds as queued DVC experiments, the
aggregate in reports/table1.json and the report's Table 1 section; the queue handling against a
scripted `dvc queue status`."""

import json
import subprocess

import numpy as np
import pytest

from tests.helpers.repos import repo_env, reproduced_tiny_repo, sh


@pytest.mark.slow
def test_table1_runs_every_cell_as_an_experiment(tmp_path):
    env = repo_env()
    dst = reproduced_tiny_repo(tmp_path / "repo")
    sh(["git", "add", "-A"], dst, env)
    sh(["git", "commit", "-qm", "results"], dst, env)
    # One objective (the two-stage VAE: the only one with a fourth sampler) keeps the test short; the
    # aggregation over objectives is tested in tests/eae/test_table1.py.
    sh(
        [
            "python",
            "-m",
            "pipelines.orchestration.table1",
            "--seeds",
            "2",
            "--objectives",
            "two_stage_vae",
            "--poll",
            "1",
        ],
        dst,
        env,
    )

    table = json.loads((dst / "reports/table1.json").read_text())
    assert [r["objective"] for r in table["rows"]] == ["two_stage_vae"]
    assert table["columns"] == ["isotropic", "mvg", "gmm", "two_stage", "reconstruction"]
    assert table["failed"] == [] and len(table["experiments"]) == 2 and table["dataset"] == "digits"
    for row in table["rows"]:
        assert row["seeds"] == [0, 1]
        for metric in ("fd", "kid", "precision", "recall"):
            for column, cell in row["cells"][metric].items():
                assert cell["n"] == 2 and np.isfinite(cell["mean"]) and np.isfinite(cell["std"]), (metric, column)
    # The seeds really differ, the test set and extractor do not.
    gmm = table["rows"][0]["cells"]["fd"]["gmm"]["values"]
    assert gmm[0] != gmm[1]

    shown = json.loads(sh(["dvc", "exp", "show", "--json"], dst, env))
    names = {e.get("name") for row in shown for e in (row.get("experiments") or [])}
    assert {"t1-two_stage_vae-s0", "t1-two_stage_vae-s1"} <= names
    html = (dst / "reports/index.html").read_text()
    assert 'id="table1"' in html and "2SVAE" in html and "± " in html

    # The same command again resumes: every cell is already finished on this commit, none is rerun.
    again = subprocess.run(
        [
            "python",
            "-m",
            "pipelines.orchestration.table1",
            "--seeds",
            "2",
            "--objectives",
            "two_stage_vae",
            "--poll",
            "1",
            "--no-report",
        ],
        cwd=dst,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 2 of 2 cells already finished" in again.stderr and "queued" not in again.stderr
    resumed = json.loads((dst / "reports/table1.json").read_text())
    assert resumed["rows"] == table["rows"] and resumed["experiments"] == table["experiments"]


def run_cells_with(monkeypatch, polls: list[tuple[dict, int | None]], grace_s: float):
    """pipelines.orchestration.table1.run_cells for one cell against a scripted `dvc queue status` (one entry a call:
    the first is read before the cell is queued); returns (failed cells, worker starts)."""
    import pipelines.orchestration.table1 as t1

    polls, starts = list(polls), []
    monkeypatch.setattr(t1, "experiment_records", lambda: [])
    monkeypatch.setattr(t1, "queue_states", lambda names: polls.pop(0))
    monkeypatch.setattr(t1, "start_workers", starts.append)
    monkeypatch.setattr(t1, "dvc", lambda *args, check=True: subprocess.CompletedProcess(args, 0, "", ""))
    monkeypatch.setattr(t1, "WORKER_GRACE_S", grace_s)
    failed = t1.run_cells([("ae", 0)], [], jobs=2, poll_s=0)
    assert polls == []  # every scripted poll was read, none more
    return failed, starts


def test_a_worker_that_exits_with_cells_queued_is_restarted(monkeypatch):
    polls = [
        ({}, None),
        ({"t1-ae-s0": "queued"}, 1),
        ({"t1-ae-s0": "queued"}, 0),  # the worker exited
        ({"t1-ae-s0": "running"}, 1),
        ({"t1-ae-s0": "success"}, 0),
    ]
    assert run_cells_with(monkeypatch, polls, grace_s=0.0) == ([], [2, 2])


def test_a_worker_just_started_is_given_time_to_show_up(monkeypatch):
    polls = [({}, None), ({"t1-ae-s0": "queued"}, 0), ({"t1-ae-s0": "failed"}, 1)]
    assert run_cells_with(monkeypatch, polls, grace_s=3600.0) == (["t1-ae-s0"], [2])


def test_a_cell_gone_from_the_queue_without_a_final_state_is_failed(monkeypatch):
    polls = [({}, None), ({"t1-ae-s0": "running"}, 1), ({}, 1)]
    assert run_cells_with(monkeypatch, polls, grace_s=0.0) == (["t1-ae-s0"], [2])
