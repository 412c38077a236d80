"""pipelines.dvcfile: the one reader of dvc.yaml (and of dvc.lock's output hashes)."""

from pathlib import Path

import pytest
import yaml

from pipelines import dvcfile

ROOT = Path(__file__).resolve().parents[2]

DVC_YAML = {
    "stages": {
        "make": {
            "cmd": "python -m pipelines.make",
            "outs": ["out/model.pt", {"out/live": {"persist": True}}, {"out/${name}": None}],
            "metrics": [{"out/uncached.json": {"cache": False, "persist": True}}],
            "plots": [{"out/plot.json": {"cache": False}}],
        },
        "other": {"cmd": "python -m pipelines.other", "outs": ["out/other.bin"]},
    }
}


@pytest.fixture
def repo(tmp_path) -> Path:
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    return tmp_path


def test_stages_outputs_and_options(repo):
    assert list(dvcfile.stages(repo)) == ["make", "other"]
    outs = dvcfile.outputs(repo)
    assert [o.path for o in outs["make"]] == ["out/model.pt", "out/live", "out/uncached.json", "out/plot.json"]
    assert [o.path for o in outs["make"] if o.deleted_before_run] == ["out/model.pt"]
    assert dvcfile.uncached_outputs(repo) == ["out/uncached.json", "out/plot.json"]
    assert outs["other"] == [dvcfile.Output("out/other.bin")]


def test_unreadable_dvc_yaml_raises_a_read_error(tmp_path):
    with pytest.raises(dvcfile.READ_ERRORS):
        dvcfile.stages(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: [")
    with pytest.raises(dvcfile.READ_ERRORS):
        dvcfile.stages(tmp_path)
    (tmp_path / "dvc.yaml").write_text("- a list")
    with pytest.raises(dvcfile.READ_ERRORS):
        dvcfile.stages(tmp_path)


def test_locked_md5(tmp_path):
    lock = {"schema": "2.0", "stages": {"prepare": {"outs": [{"path": "data/prepared", "md5": "abc.dir"}]}}}
    text = yaml.safe_dump(lock)
    assert dvcfile.locked_md5(text, "data/prepared") == "abc.dir"
    assert dvcfile.locked_md5(text, "models/eae.pt") is None
    assert dvcfile.out_md5("data/prepared", tmp_path) is None  # no dvc.lock
    (tmp_path / "dvc.lock").write_text(text)
    assert dvcfile.out_md5("data/prepared", tmp_path) == "abc.dir"


def test_the_project_pipeline():
    names = list(dvcfile.stages(ROOT))
    assert names[:4] == ["check", "fetch", "prepare", "train"] and names[-1] == "report"
    assert "reports/fid.json" in dvcfile.uncached_outputs(ROOT)
    outs = dvcfile.outputs(ROOT)["train"]
    # every output is persist: true, so DVC deletes none of them before the stage runs
    assert "models/eae.pt" in [o.path for o in outs]
    assert [o.path for o in outs if o.deleted_before_run] == []
