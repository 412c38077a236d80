"""The feature_stats stage with Inception features (random weights in a temporary TORCH_HOME),
and the paper configs that use it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from eae.evaluation.inception import FID_WEIGHTS_FILENAME
from tests.helpers.inception import random_fid_inception_state
from tests.helpers.repos import ROOT


def stage(name: str, cwd: Path, torch_home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    env.update(PYTHONPATH=str(ROOT), TORCH_HOME=str(torch_home))
    return subprocess.run(
        [sys.executable, "-m", f"pipelines.{name}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("inception")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["eval"].update({"feature_extractor": "inception", "inception_dims": 64, "batch_size": 128})
    params["data"]["test_fraction"] = 0.03  # 54 test images: Inception on CPU is most of the stage's time
    (d / "params.yaml").write_text(yaml.safe_dump(params))
    assert stage("prepare", d, d).returncode == 0
    return d


def test_missing_inception_weights_is_one_clear_line(workdir, tmp_path):
    proc = stage("feature_stats", workdir, tmp_path / "empty-torch-home")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert FID_WEIGHTS_FILENAME in errors[0] and str(tmp_path / "empty-torch-home") in errors[0]
    assert not (workdir / "models/features").exists()


def test_inception_statistics_in_pytorch_fid_format(workdir, tmp_path):
    weights = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    weights.parent.mkdir(parents=True)
    torch.save(random_fid_inception_state(), weights)
    proc = stage("feature_stats", workdir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(workdir / "models/features/test_stats.npz") as f:
        assert set(f.files) == {"mu", "sigma"} and f["mu"].shape == (64,) and f["sigma"].shape == (64, 64)
    facts = json.loads((workdir / "reports/feature_extractor.json").read_text())
    assert facts == {"feature_extractor": "inception", "dims": 64, "feature_dim": 64, "n_test": 54}
    assert not (workdir / "models/features/classifier.pt").exists()
