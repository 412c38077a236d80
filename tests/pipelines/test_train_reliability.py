"""Issue 22, class 1: plain `dvc repro` loses nothing on kill -9 during train. Every output in dvc.yaml is
``persist: true``, so DVC never deletes one before its stage runs, and the stage replaces its outputs
atomically only when it succeeds: the last good models/eae.pt stays in the workspace until the new one
replaces it (this replaced the hard-link store under .dvc/tmp/eae/last_good/ restored at import time).
Also: a diverged training run writes nothing (class 2/4: no NaN checkpoint)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from pipelines import dvcfile
from tests.helpers.repos import ROOT, reproduced_tiny_repo, sh
from tests.helpers.workspace import assert_refused, env, fingerprint, module

pytestmark = pytest.mark.reliability


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dvc_deletes_no_output_before_a_stage_runs():
    """The twin of the last_good store's tests: what DVC would delete before running a stage (a cached
    output without ``persist``) no longer exists in dvc.yaml, so there is nothing to put back; every stage
    writes its outputs atomically (eae.io), so ``persist`` never leaves a half-written one."""
    outputs = dvcfile.outputs(ROOT)
    assert outputs and all(outs for outs in outputs.values())
    deleted = [out.path for outs in outputs.values() for out in outs if out.deleted_before_run]
    assert deleted == []
    assert {"models/eae.pt", "data/prepared", "models/generator.onnx"} <= {
        out.path for outs in outputs.values() for out in outs if out.persist
    }


def test_diverged_training_writes_nothing_and_keeps_the_last_good_checkpoint(workspace):
    """A learning rate of 1e30 trains NaN weights: before, the stage died with a FloatingPointError
    traceback. The last good models/eae.pt stays (DVC does not delete it: persist)."""
    before = fingerprint(workspace)
    proc = module("pipelines.train", cwd=workspace, EAE_TRAIN__LR="1e30", EAE_TRAIN__EPOCHS="3")
    assert_refused(
        proc,
        1,
        r"^error: epoch \d: training diverged: .*nan.*; nothing was written \(lower train\.lr or the objective's",
    )
    assert fingerprint(workspace) == before
    assert not (workspace / ".dvc/tmp/eae/train_state.pt").exists()


@pytest.mark.slow
def test_kill_9_of_dvc_repro_during_train_loses_nothing(tmp_path):
    """Class 1: `dvc repro` killed with -9 while train runs, without a DVC cache to restore from: before,
    DVC had deleted models/eae.pt and nothing brought it back. Now the workspace holds the last good
    checkpoint throughout; the next `dvc repro` resumes training and completes the pipeline, and the
    scores it records belong to the new checkpoint."""
    repo = reproduced_tiny_repo(tmp_path / "repo")
    shutil.rmtree(repo / ".dvc/cache")  # as in a fresh clone, after dvc gc, or for outputs written outside DVC
    checkpoint = repo / "models/eae.pt"
    good = sha(checkpoint)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 6  # train reruns (and runs long enough to be killed after an epoch)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    proc = subprocess.Popen(
        ["dvc", "repro"],
        cwd=repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state = repo / ".dvc/tmp/eae/train_state.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not state.exists():
        time.sleep(0.2)  # training runs: DVC deleted models/eae.pt long before
    assert proc.poll() is None, "dvc repro ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # DVC and the stage it runs, as a crash or the OOM killer would
    proc.wait()
    time.sleep(0.5)
    assert checkpoint.is_file() and sha(checkpoint) == good, "the last good checkpoint is gone"

    out = sh(["dvc", "repro"], repo)
    assert "Running stage 'train'" in out
    assert sha(checkpoint) != good
    assert "up to date" in sh(["dvc", "status"], repo)
    ckpt = torch.load(checkpoint, weights_only=True)
    assert ckpt["metrics"]["resumed_from_epoch"] >= 1 and ckpt["metrics"]["epochs"] == 6
    assert len(ckpt["code_stats"]["mean"]) == ckpt["arch"]["latent_dim"]
    protocol = yaml.safe_load((repo / "reports/fid.json").read_text())["protocol"]
    assert protocol["checkpoint_sha256"] == sha(checkpoint)
    assert protocol["density_sha256"] == sha(repo / "models/density.npz")
