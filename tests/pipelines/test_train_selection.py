"""The train stage's validation split, plateau schedule and best-validation selection (the RAE
protocol), and the EAE's entropy queue, on the tiny digits network: known answers and exact resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from eae.data.prepared import read_split, seeded_split
from eae.models.inference import reconstruction_error
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint
from tests.helpers.repos import ROOT, TINY, finish_stage, start_stage

pytestmark = pytest.mark.slow
STATE = Path(".dvc/tmp/eae/train_state.pt")
TRAIN = {
    "epochs": 8,
    "val_fraction": 0.2,
    "select": "best_val",
    "lr_schedule": "plateau",
    "lr_plateau_patience": 1,
    "lr": 0.01,
    "checkpoint_every": 1,
    "sample_every": 0,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("selection")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(TINY["model"])
    params["train"].update(TRAIN)
    params["objectives"]["eae"]["entropy_queue"] = 300
    (d / "params.yaml").write_text(yaml.safe_dump(params))
    finish_stage(start_stage("prepare", d))
    finish_stage(start_stage("train", d))
    return d


def test_the_checkpoint_holds_the_best_validation_epoch(workdir):
    ckpt = load_checkpoint(workdir / "models/eae.pt")
    history, metrics = ckpt["metrics"]["history"], ckpt["metrics"]
    val = history["val_recon"]
    assert len(val) == TRAIN["epochs"] and metrics["selected_epoch"] == int(np.argmin(val)) + 1
    assert metrics["best_val_recon"] == min(val)
    # the saved weights score exactly that on the held-out images (a seeded split of the training split)
    images = read_split(workdir / "data/prepared", "train").images
    _, held_out = seeded_split(len(images), TRAIN["val_fraction"], seed=0)
    model = model_from_checkpoint(ckpt)
    assert reconstruction_error(model, torch.from_numpy(images[held_out])) == pytest.approx(min(val), rel=1e-6)
    assert ckpt["objective"]["weights"]["entropy_queue"] == 300


def test_plateau_schedule_follows_the_validation_curve(workdir):
    """ReduceLROnPlateau(factor 0.5, patience 1) replayed on the recorded curve gives the recorded lrs."""
    history = load_checkpoint(workdir / "models/eae.pt")["metrics"]["history"]
    lr, best, bad, expected = TRAIN["lr"], float("inf"), 0, []
    for v in history["val_recon"]:
        expected.append(lr)
        if v < best * (1 - 1e-4):  # torch's default threshold (relative, 1e-4)
            best, bad = v, 0
        else:
            bad += 1
            if bad > TRAIN["lr_plateau_patience"]:
                lr, bad = lr * 0.5, 0
    assert history["lr"] == pytest.approx(expected)


def test_a_killed_run_resumes_to_the_same_selection(workdir):
    reference = load_checkpoint(workdir / "models/eae.pt")
    (workdir / "models/eae.pt").unlink()
    proc = start_stage("train", workdir)
    deadline = time.monotonic() + 240
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, "training ended before it could be killed"
        try:
            epoch = torch.load(workdir / STATE, weights_only=True)["epoch"] if (workdir / STATE).exists() else 0
        except Exception:  # noqa: BLE001 - being replaced right now
            epoch = 0
        if epoch >= 3:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.02)
    out = finish_stage(start_stage("train", workdir))
    assert "resuming from" in out
    resumed = load_checkpoint(workdir / "models/eae.pt")
    assert resumed["metrics"]["history"] == reference["metrics"]["history"]
    assert resumed["metrics"]["selected_epoch"] == reference["metrics"]["selected_epoch"]
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


def test_selection_and_plateau_need_a_validation_split(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(select="best_val", lr_schedule="plateau")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.config", "params.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert "train.select: best_val and train.lr_schedule: plateau need a validation split" in proc.stderr
