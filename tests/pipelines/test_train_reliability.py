"""Issue 22, class 1: plain `dvc repro` loses nothing on kill -9 during train. DVC deletes a stage's cached
outputs before it runs the stage; every stage that succeeds keeps its outputs under
.dvc/tmp/eae/last_good/ (hard links) and a stage started with -m first puts back what DVC deleted
(``pipelines.restore_last_good``), so the last good models/eae.pt stays in the workspace until the new one
replaces it. Also: a diverged training run writes nothing (class 2/4: no NaN checkpoint)."""

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

import pipelines
from tests.helpers.repos import ROOT, reproduced_tiny_repo, sh
from tests.helpers.workspace import assert_refused, env, fingerprint, module

pytestmark = pytest.mark.reliability

DVC_YAML = {
    "stages": {
        "make": {
            "cmd": "python -m pipelines.make",
            "outs": [
                "out/model.pt",
                "out/folder",
                {"out/live": {"persist": True}},
                {"out/uncached.json": {"cache": False}},
                "${param.path}",
            ],
            "metrics": [{"out/m.json": {"cache": False}}],
        },
        "other": {"cmd": "python -m pipelines.other", "outs": ["out/other.bin"]},
    }
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path) -> Path:
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (tmp_path / "out/folder/sub").mkdir(parents=True)
    (tmp_path / "out/folder/sub/a.npy").write_text("a1")
    (tmp_path / "out/model.pt").write_text("m1")
    (tmp_path / "out/live").mkdir()
    (tmp_path / "out/uncached.json").write_text("{}")
    return tmp_path


def test_outputs_dvc_deletes_are_the_cached_ones(fake):
    assert pipelines.deleted_outputs("pipelines.make", fake) == ("make", ["out/model.pt", "out/folder"])
    assert pipelines.deleted_outputs("pipelines.config", fake) == (None, [])
    (fake / "dvc.yaml").write_text("stages: [")
    assert pipelines.deleted_outputs("pipelines.make", fake) == (None, [])


def test_kept_outputs_come_back_when_deleted_and_only_then(fake):
    assert pipelines.keep_last_good("pipelines.make", fake) == ["out/model.pt", "out/folder"]
    kept = fake / pipelines.LAST_GOOD
    assert os.path.samefile(kept / "out/model.pt", fake / "out/model.pt")  # a link: no data copied
    assert os.path.samefile(kept / "out/folder/sub/a.npy", fake / "out/folder/sub/a.npy")

    (fake / "out/model.pt").unlink()  # what DVC does before it runs the stage
    shutil.rmtree(fake / "out/folder")
    assert pipelines.restore_last_good("pipelines.make", fake) == ["out/model.pt", "out/folder"]
    assert (fake / "out/model.pt").read_text() == "m1" and (fake / "out/folder/sub/a.npy").read_text() == "a1"
    assert pipelines.restore_last_good("pipelines.make", fake) == []  # present: nothing to do

    # the stage then writes new outputs atomically (a new file, never in place) and succeeds
    (fake / "out/model.tmp").write_text("m2")
    os.replace(fake / "out/model.tmp", fake / "out/model.pt")
    assert (kept / "out/model.pt").read_text() == "m1"  # the last good one until the stage succeeds
    pipelines.keep_last_good("pipelines.make", fake)
    assert (kept / "out/model.pt").read_text() == "m2" and sorted(p.name for p in kept.joinpath("out").iterdir()) == [
        "folder",
        "model.pt",
    ]


def test_diverged_training_writes_nothing_and_keeps_the_last_good_checkpoint(workspace):
    """A learning rate of 1e30 trains NaN weights: before, the stage died with a FloatingPointError
    traceback. Also: DVC had deleted models/eae.pt; the stage put it back from last_good first."""
    shutil.copy(ROOT / "dvc.yaml", workspace / "dvc.yaml")
    kept = workspace / pipelines.LAST_GOOD / "models/eae.pt"
    kept.parent.mkdir(parents=True)
    os.link(workspace / "models/eae.pt", kept)
    before = fingerprint(workspace)
    (workspace / "models/eae.pt").unlink()
    proc = module("pipelines.train", cwd=workspace, EAE_TRAIN__LR="1e30", EAE_TRAIN__EPOCHS="3")
    assert_refused(
        proc,
        1,
        r"^error: epoch \d: training diverged: .*nan.*; nothing was written \(lower train\.lr or the objective's",
    )
    assert "put back the last good models/eae.pt (from .dvc/tmp/eae/last_good)" in proc.stderr
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
    assert sha(repo / pipelines.LAST_GOOD / "models/eae.pt") == good  # kept by the reproduced run
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
    assert sha(repo / pipelines.LAST_GOOD / "models/eae.pt") == sha(checkpoint)
