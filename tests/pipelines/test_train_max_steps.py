"""train.max_steps: the train stage stops after that many optimiser steps (the last epoch partial) and
writes its outputs as after a whole run (what benchmarks/scale.py times at full data size)."""

import json

import pytest
import torch
import yaml

from tests.helpers.repos import ROOT
from tests.helpers.workspace import module

pytestmark = pytest.mark.slow


def test_train_stops_after_max_steps(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update({"latent_dim": 4, "encoder_channels": [8, 16], "decoder_channels": [16, 8]})
    params["train"].update({"epochs": 5, "max_steps": 17, "device": "cpu", "sample_every": 0})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("prepare", "train"):
        proc = module(f"pipelines.{stage}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "reports/train_metrics.json").read_text())
    assert metrics["steps"] == 17 and metrics["epochs"] == 5  # digits: 14 steps an epoch, so 1 whole + 3
    history = torch.load(tmp_path / "models/eae.pt", weights_only=True)["metrics"]["history"]
    assert len(history["loss"]) == 2
    assert not (tmp_path / ".dvc/tmp/eae/train_state.pt").exists()
