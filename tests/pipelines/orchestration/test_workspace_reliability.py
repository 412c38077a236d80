"""The pipeline as a whole (`make repro` = python -m pipelines.orchestration.workspace repro, and the retrain flow):
bad parameters are refused before DVC touches an output, and a failed or killed stage leaves the
last good outputs in place."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers.repos import reproduced_tiny_repo
from tests.helpers.workspace import OUTPUTS, assert_refused, env, fingerprint, module

pytestmark = pytest.mark.reliability

WORKSPACE_OUTPUTS = tuple(p for p in OUTPUTS if p != "params.yaml") + ("dvc.lock",)


def set_param(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# --------------------------------------------------------------------------- validation first (fast)


@pytest.mark.parametrize(
    "command",
    [
        ["pipelines.orchestration.workspace", "repro"],
        ["pipelines.orchestration.flows", "retrain", "--repo", ".", "--no-promote"],
    ],
)
def test_bad_params_stop_the_pipeline_before_dvc_runs(workspace, command):
    """Item 1: with train.epochs: abc the flow ran DVC, which deleted models/eae.pt, dvclive/ and
    reports/train_metrics.json before the train stage found the bad value."""
    set_param(workspace, "train", "epochs", "abc")
    before = fingerprint(workspace)
    assert_refused(module(*command, cwd=workspace), 2, r"params\.yaml: invalid parameter 'train\.epochs'")
    assert fingerprint(workspace) == before


def test_bad_set_value_stops_the_flow(workspace):
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.orchestration.flows", "retrain", "--repo", ".", "--set", "train.epochs=true", cwd=workspace),
        2,
        r"params\.yaml with train\.epochs=True: invalid parameter 'train\.epochs': expected a number",
    )
    assert fingerprint(workspace) == before


def test_concurrent_run_is_refused(workspace):
    """Handled before the probe (for the flow); `make repro` now takes the same lock."""
    from pipelines.orchestration.flows import workspace_lock

    held, release = threading.Event(), threading.Event()

    def hold():
        with workspace_lock(workspace):
            held.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert_refused(
            module("pipelines.orchestration.workspace", "repro", cwd=workspace), 1, r"another retrain is running"
        )
    finally:
        release.set()
        thread.join()


# --------------------------------------------------------------------------- the guard (fast, no DVC)

DVC_YAML = {
    "stages": {
        "a": {"cmd": "x", "outs": ["out/a", {"live": {"cache": False, "persist": True}}]},
        "b": {"cmd": "y", "outs": ["out/b.bin"], "metrics": [{"m.json": {"cache": False}}]},
    }
}


def fake_repo(root: Path) -> Path:
    (root / "out/a").mkdir(parents=True)
    (root / "out/a/1.npy").write_text("a1")
    (root / "live").mkdir()
    (root / "live/curve.tsv").write_text("curve")
    (root / "out/b.bin").write_text("b1")
    (root / "m.json").write_text("{}")
    (root / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"a": {"md5": 1}, "b": {"md5": 1}}}))
    return root


def dvc_deletes_outputs(root: Path, *paths: str) -> None:
    for p in paths:
        shutil.rmtree(root / p) if (root / p).is_dir() else (root / p).unlink()


def test_failed_stage_gets_its_outputs_back_completed_stage_keeps_new_ones(tmp_path):
    from pipelines.orchestration.workspace import guarded

    root = fake_repo(tmp_path)
    with pytest.raises(RuntimeError):
        with guarded(root):
            dvc_deletes_outputs(root, "out/a", "out/b.bin", "m.json")
            (root / "out/a").mkdir()
            (root / "out/a/1.npy").write_text("a2")  # stage a completed: DVC recorded it
            (root / "dvc.lock").write_text(yaml.safe_dump({"stages": {"a": {"md5": 2}, "b": {"md5": 1}}}))
            raise RuntimeError("stage b failed")
    assert (root / "out/a/1.npy").read_text() == "a2"
    assert (root / "out/b.bin").read_text() == "b1" and (root / "m.json").read_text() == "{}"
    assert (root / "live/curve.tsv").read_text() == "curve"
    assert not list((root / ".dvc/tmp/eae").iterdir())  # the snapshot is gone


def test_snapshot_of_a_killed_run_is_restored_by_the_next_run(tmp_path):
    from pipelines.orchestration.workspace import recover, snapshot

    root = fake_repo(tmp_path)
    snap = snapshot(root)
    dead = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    )
    snap = snap.rename(snap.with_name(f"snapshot.{dead}.x"))
    dvc_deletes_outputs(root, "out/b.bin", "out/a")  # then the run was killed
    assert sorted(recover(root)) == ["out/a", "out/b.bin"]
    assert (root / "out/b.bin").read_text() == "b1" and (root / "out/a/1.npy").read_text() == "a1"
    assert not snap.exists()


def test_successful_run_keeps_everything_and_no_snapshot(tmp_path):
    from pipelines.orchestration.workspace import guarded, restore, snapshot

    root = fake_repo(tmp_path)
    snap = snapshot(root)
    assert restore(root, snap) == [] and not snap.exists()  # nothing changed: nothing to restore
    with guarded(root):
        (root / "out/b.bin").unlink()
        (root / "out/b.bin").write_text("b2")
        (root / "dvc.lock").write_text(yaml.safe_dump({"stages": {"a": {"md5": 1}, "b": {"md5": 2}}}))
    assert (root / "out/b.bin").read_text() == "b2" and not list((root / ".dvc/tmp/eae").iterdir())


# --------------------------------------------------------------------------- DVC end to end (slow)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """A committed tiny copy of the repository after `dvc repro` (read-only: tests copy it)."""
    return reproduced_tiny_repo(tmp_path_factory.mktemp("reproduced") / "repo")


@pytest.fixture
def repo(reproduced, tmp_path):
    dst = tmp_path / "repo"
    shutil.copytree(reproduced, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def no_cache(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc/cache")


@pytest.mark.slow
@pytest.mark.parametrize("cached", [True, False])
def test_flow_with_bad_params_keeps_every_output(repo, cached):
    """Item 1, with and without a DVC cache (without one, DVC reran prepare first, deleting
    data/prepared, and the flow blamed stage 'prepare')."""
    if not cached:
        no_cache(repo)
    set_param(repo, "train", "epochs", "abc")
    before = fingerprint(repo, WORKSPACE_OUTPUTS)
    assert_refused(
        module("pipelines.orchestration.flows", "retrain", "--repo", str(repo), "--no-promote", cwd=repo),
        2,
        r"invalid parameter 'train\.epochs'",
    )
    assert fingerprint(repo, WORKSPACE_OUTPUTS) == before


@pytest.mark.slow
@pytest.mark.parametrize("cached", [True, False])
def test_failing_stage_in_the_flow_restores_the_last_good_outputs(repo, harness, cached):
    """Item 1: a stage that fails at run time (a batch larger than the 1437 training digits: valid
    parameters, data too small) no longer costs models/eae.pt, dvclive/ or the metrics; the error (what
    `python -m pipelines.orchestration.flows retrain` prints after 'error: ') names the failing stage, also without
    a DVC cache, when DVC reruns every stage."""
    from pipelines.orchestration.flows import StageFailed, retrain

    if not cached:
        no_cache(repo)
    set_param(repo, "train", "batch_size", 2000)
    before = fingerprint(repo, WORKSPACE_OUTPUTS)
    with pytest.raises(StageFailed) as info:
        retrain(repo=str(repo), promote_if_better=False)
    message = str(info.value)
    assert message.startswith("stage 'train'") and "exceeds the" in message and "\n" not in message, message
    assert fingerprint(repo, WORKSPACE_OUTPUTS) == before


@pytest.mark.slow
def test_make_repro_restores_the_last_good_outputs(repo):
    set_param(repo, "train", "batch_size", 2000)
    before = fingerprint(repo, WORKSPACE_OUTPUTS)
    proc = module("pipelines.orchestration.workspace", "repro", cwd=repo)
    assert proc.returncode != 0 and "exceeds the" in proc.stderr + proc.stdout
    assert "restored the last good models/eae.pt" in proc.stderr + proc.stdout
    assert fingerprint(repo, WORKSPACE_OUTPUTS) == before


@pytest.mark.slow
def test_killed_train_run_keeps_dvclive(repo):
    """Item 5: any killed or failed train run wiped dvclive/ (dvclive's Live() resets it on start)."""
    before = fingerprint(repo, WORKSPACE_OUTPUTS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(EAE_TRAIN__EPOCHS="500"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (repo / ".dvc/tmp/eae/train_state.pt").exists():
        time.sleep(0.2)  # the first epoch is done: Live() has started long ago
    assert proc.poll() is None, "train ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert fingerprint(repo, WORKSPACE_OUTPUTS) == before
