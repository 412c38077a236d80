"""Kill a training run after an epoch, restart it, and get the weights of an uninterrupted run (CPU)."""

import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from eae.training.resume import fingerprint, load_state
from tests.helpers.repos import ROOT, finish_stage, start_stage

pytestmark = pytest.mark.slow
STATE = Path(".dvc/tmp/eae/train_state.pt")
EPOCHS = 6


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update({"epochs": EPOCHS, "checkpoint_every": 1, "sample_every": 0, "device": "cpu"})
    (d / "params.yaml").write_text(yaml.safe_dump(params))
    finish_stage(start_stage("prepare", d))
    return d


def test_killed_run_resumes_to_identical_weights(workdir):
    finish_stage(start_stage("train", workdir))
    reference = torch.load(workdir / "models/eae.pt", weights_only=True)
    assert not (workdir / STATE).exists()  # removed once training completed
    shutil.rmtree(workdir / "models")

    proc = start_stage("train", workdir)
    deadline = time.monotonic() + 240
    killed_after = None
    while killed_after is None:
        assert time.monotonic() < deadline and proc.poll() is None, "training ended before it could be killed"
        if (workdir / STATE).exists():
            try:
                epoch = torch.load(workdir / STATE, weights_only=True)["epoch"]
            except Exception:  # noqa: BLE001 - being replaced right now
                epoch = 0
            if epoch >= 2:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_after = epoch
        time.sleep(0.02)
    assert not (workdir / "models/eae.pt").exists()

    out = finish_stage(start_stage("train", workdir))
    assert "resuming from" in out
    resumed = torch.load(workdir / "models/eae.pt", weights_only=True)
    assert resumed["metrics"]["resumed_from_epoch"] >= killed_after
    assert resumed["metrics"]["history"] == reference["metrics"]["history"]
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
    curve = (workdir / "dvclive/plots/metrics/train/loss.tsv").read_text().strip().splitlines()
    assert len(curve) == EPOCHS + 1  # header + every epoch, also those before the interruption


def test_state_for_other_parameters_is_not_resumed(tmp_path):
    from eae.models.networks import ArchConfig
    from eae.models.objectives.registry import build_objective
    from eae.training.resume import save_state

    model = build_objective("eae", ArchConfig((1, 8, 8), 2, (4,), (4, 4)), {"entropy_weight": 0.1})
    opt = torch.optim.Adam(model.parameters())
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)
    save_state(
        tmp_path / "s.pt",
        fingerprint=fingerprint({"a": 1}),
        epoch=3,
        model=model,
        optimizer=opt,
        scheduler=sched,
        shuffle=torch.Generator(),
        history={},
    )
    state, _ = load_state(tmp_path / "s.pt", fingerprint({"a": 1}))
    assert state["epoch"] == 3
    assert load_state(tmp_path / "s.pt", fingerprint({"a": 2}))[0] is None
    (tmp_path / "s.pt").write_bytes(b"corrupt")
    state, why = load_state(tmp_path / "s.pt", fingerprint({"a": 1}))
    assert state is None and "unreadable" in why
