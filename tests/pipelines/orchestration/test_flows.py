"""The Prefect retrain flow on a tiny configuration (ephemeral Prefect via prefect_test_harness)."""

import json
import subprocess
import threading

import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness

from pipelines._stage import dvc_out_md5, dvc_stages
from pipelines.orchestration.flows import ModifiedWorkspace, StageFailed, WorkspaceBusy, retrain, workspace_lock
from pipelines.orchestration.registry import ARTIFACTS, head_md5
from tests.helpers.repos import ROOT, make_tiny_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_stage_order_respects_dependencies():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    order = dvc_stages(ROOT)
    assert order[:2] == ["check", "fetch"] and order[-1] == "report"
    produced_by = {}
    for name in order:
        for out in stages[name].get("outs", []) + stages[name].get("metrics", []):
            produced_by[out if isinstance(out, str) else next(iter(out))] = name
    for name in order:
        for dep in stages[name].get("deps", []):
            if dep in produced_by:
                assert order.index(produced_by[dep]) < order.index(name), (dep, name)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny repository: its committed reports/fid.json and dvc.lock are the full-size model's, not of its
    committed (tiny) parameters, so a first promotion has no committed scores to compare with."""
    return make_tiny_repo(tmp_path_factory.mktemp("flow"))


def test_a_modified_workspace_is_refused_before_anything_runs(tiny):
    params, lock = tiny / "params.yaml", (tiny / "dvc.lock").read_bytes()
    committed = params.read_text()
    params.write_text(committed.replace("seed: 0", "seed: 1", 1))
    try:
        with pytest.raises(
            ModifiedWorkspace, match=r"params\.yaml differs from HEAD \(seed: 0 -> 1\).*--from-workspace"
        ):
            retrain(repo=str(tiny))
    finally:
        params.write_text(committed)
    assert (tiny / "dvc.lock").read_bytes() == lock  # DVC never ran


def test_retrain_runs_every_stage_in_order_and_promotes(tiny):
    result = retrain(repo=str(tiny))
    assert result["stages"] == dvc_stages(tiny)
    assert result["promotion"]["promoted"]
    assert result["promotion"]["reason"].startswith("no promoted model yet and no committed scores")
    assert (tiny / "models/promoted/generator.onnx").read_bytes() == (tiny / "models/generator.onnx").read_bytes()
    assert json.loads((tiny / "reports/promotion.json").read_text())["promoted"] is True
    # ... and registered: a GTO version of the generator and its card in stage prod, at a commit that pins it
    registry = result["promotion"]["registry"]
    assert registry["registered"] and registry["committed"]
    assert {name: a["version"] for name, a in registry["artifacts"].items()} == dict.fromkeys(ARTIFACTS, "v0.0.1")
    tags = set(subprocess.run(["git", "tag"], cwd=tiny, capture_output=True, text=True, check=True).stdout.split())
    assert {"eae-generator@v0.0.1", "eae-generator#prod#1", "eae-generator-card#prod#1"} <= tags
    assert sorted(registry["tags"]) == sorted(tags) and len(tags) == 4  # the tags it made, named
    assert json.loads((tiny / "reports/promotion.json").read_text())["registry"] == registry
    assert head_md5(tiny, "models/generator.onnx") == dvc_out_md5("models/generator.onnx", tiny)

    again = retrain(repo=str(tiny))  # nothing changed: DVC skips every stage, same FID is not "better"
    assert again["promotion"]["promoted"] is False and "registry" not in again["promotion"]


def test_busy_workspace_is_refused(tiny):
    release, held = threading.Event(), threading.Event()

    def hold():
        with workspace_lock(tiny):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(WorkspaceBusy, match="another retrain is running"):
            retrain(repo=str(tiny), promote_if_better=False)
    finally:
        release.set()
        thread.join()


def test_failing_stage_fails_the_flow_and_keeps_the_promoted_model(tmp_path, tiny):
    bad = make_tiny_repo(tmp_path, overrides={"train": {"batch_size": 2000}})  # more than the 1437 training digits
    promoted = bad / "models/promoted"
    promoted.mkdir(parents=True)
    for name in ("generator.onnx", "generator.json", "decoder.onnx"):
        (promoted / name).write_bytes((tiny / "models/promoted" / name).read_bytes())
    with pytest.raises(StageFailed, match=r"stage 'train' failed.*exceeds the"):
        retrain(repo=str(bad))
    assert (promoted / "generator.onnx").read_bytes() == (tiny / "models/promoted/generator.onnx").read_bytes()
    assert not (bad / "reports/promotion.json").exists()
