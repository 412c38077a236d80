"""The pipeline as a whole (`make repro` = plain `dvc repro`, and the retrain flow): bad parameters are
refused before DVC touches an output, and a failed or killed stage leaves the last good outputs in
place (every output in dvc.yaml is persist: true; the check stage validates params.yaml first). The
cases of the README's own path, run as written, are in tests/test_main_path.py."""

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


def last_good(repo: Path) -> dict[str, str]:
    """The outputs and what dvc.lock says of them: the fingerprint of WORKSPACE_OUTPUTS, with dvc.lock's
    entries other than the check stage's (which succeeds, and records the new parameters, before a later
    stage fails)."""
    found = fingerprint(repo, tuple(p for p in WORKSPACE_OUTPUTS if p != "dvc.lock"))
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    found["dvc.lock"] = yaml.safe_dump({k: v for k, v in stages.items() if k != "check"})
    return found


def set_param(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# --------------------------------------------------------------------------- validation first (fast)


@pytest.mark.parametrize(
    "command",
    [
        ["pipelines.check"],  # the first stage of `dvc repro` (make repro); end to end: test_main_path.py
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
    """Handled before the probe (for the flow); the command line says it in one line. (`make repro` is
    plain `dvc repro` now: DVC's own lock refuses a second DVC command in the workspace.)"""
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
            module("pipelines.orchestration.flows", "retrain", "--repo", ".", "--no-promote", cwd=workspace),
            1,
            r"another retrain is running",
        )
    finally:
        release.set()
        thread.join()


def test_retrain_says_what_it_commits_and_tags():
    """Issue 32: the one-shot flow made a commit and four tags without saying so beside the command."""
    from pipelines.orchestration.oneshot import announcement, summary

    assert "commits dvc.lock, params.yaml and the results" in announcement(".") and "4 git tags" in announcement(".")
    tags = ["eae-generator#prod#1", "eae-generator-card#prod#1", "eae-generator-card@v0.0.1", "eae-generator@v0.0.1"]
    decision = {
        "promoted": True,
        "reason": "gmm 1.0000 <= committed 1.0000",
        "registry": {"registered": True, "committed": True, "commit": "abc123", "tags": tags, "artifacts": {}},
    }
    lines = summary({"stages": ["check", "fetch"], "promotion": decision})
    assert lines[-3:] == [
        "promotion: promoted (gmm 1.0000 <= committed 1.0000)",
        "registry: committed abc123",
        f"registry: tags made: {', '.join(tags)}",
    ]
    kept = summary({"stages": ["check"], "promotion": {"promoted": False, "reason": "gmm 2 > committed 1"}})
    assert kept[-1] == "registry: nothing committed, no tags"
    assert summary({"stages": ["check"], "promotion": None})[-1].endswith("nothing committed, no tags")


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
def test_failing_stage_in_the_flow_keeps_the_last_good_outputs(repo, harness, cached):
    """Item 1: a stage that fails at run time (a batch larger than the 1437 training digits: valid
    parameters, data too small) no longer costs models/eae.pt, dvclive/ or the metrics; the error (what
    `python -m pipelines.orchestration.flows retrain` prints after 'error: ') names the failing stage, also without
    a DVC cache, when DVC reruns every stage."""
    from pipelines.orchestration.flows import StageFailed, retrain

    if not cached:
        no_cache(repo)
    set_param(repo, "train", "batch_size", 2000)
    before = last_good(repo)
    with pytest.raises(StageFailed) as info:
        retrain(repo=str(repo), promote_if_better=False)
    message = str(info.value)
    assert message.startswith("stage 'train'") and "exceeds the" in message and "\n" not in message, message
    assert last_good(repo) == before


@pytest.mark.slow
@pytest.mark.parametrize("cached", [True, False])
def test_make_repro_keeps_the_last_good_outputs(repo, cached):
    """The twin of the snapshot guard's tests (a failed stage got its outputs back, with or without a
    DVC cache): `make repro` is plain `dvc repro`, whose train stage fails at run time (a batch larger
    than the training digits: valid parameters, data too small). DVC deleted nothing (persist) and the
    stage wrote nothing, so every output is the last good one, and no snapshot or store is needed."""
    if not cached:
        no_cache(repo)  # DVC reruns every stage before train: their outputs are rewritten identically
    set_param(repo, "train", "batch_size", 2000)
    before = last_good(repo)
    proc = subprocess.run(["dvc", "repro"], cwd=repo, env=env(), capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "exceeds the" in out and "failed to reproduce 'train'" in out, out[-3000:]
    assert "Traceback" not in out
    assert last_good(repo) == before
    assert not list(repo.glob(".dvc/tmp/eae/snapshot.*")) and not (repo / ".dvc/tmp/eae/last_good").exists()


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
