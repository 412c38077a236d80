"""scripts/device_check.sh without a GPU: the CPU fallback runs every step at a tiny size (the CelebA
config through `dvc repro` on a synthetic folder, the step variants, Inception throughput, onnxruntime)
and writes one JSON that says what ran where. Its pipeline run is also the suite's whole-pipeline run of
configs/celeba.yaml (tests/test_paper_configs.py runs each paper config up to fit_density): Inception
scores, the ONNX generator and its card, the report."""

import json
import subprocess

import numpy as np
import onnxruntime
import pytest

from eae.evaluation.results import read_results
from pipelines._stage import dvc_stages
from tests.helpers.repos import ROOT, repo_env

pytestmark = pytest.mark.slow


def test_device_check_cpu_fallback_runs_every_step(tmp_path):
    out, work = tmp_path / "check.json", tmp_path / "work"
    args = ["--size", "cpu", "--images", "150", "--out", str(out), "--keep", str(work)]
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "device_check.sh"), *args],
        cwd=tmp_path,
        env=repo_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["errors"] == {} and report["size"] == "cpu" and report["device"] == "cpu"
    run = report["pipeline"]
    assert run["split"] == {"train": 120, "valid": 15, "test": 15} and run["epochs"] == 1
    assert set(run["stage_seconds"]) == set(dvc_stages(ROOT))  # every stage of dvc.yaml ran
    assert run["dvc_repro_seconds"] > sum(run["stage_seconds"].values()) / 2
    assert run["train_img_s"] > 0 and set(run["fd"]) == {"isotropic", "mvg", "gmm", "reconstruction"}
    variants = {v["variant"]: v for v in report["train_variants"]}
    assert {"fp32", "bf16", "bf16+channels_last"} <= set(variants) and variants["fp32"]["vs_fp32"] == 1.0
    assert report["inception"]["img_s"] > 0 and report["inception"]["dims"] == 64
    ort = report["onnx_generator"]
    assert ort["requested"][0] == "CUDAExecutionProvider"
    assert ort["providers"] == ["CPUExecutionProvider"] and ort["cuda_provider_active"] is False  # what ran
    assert set(ort["img_s"]) == {"64", "1000"} and all(v > 0 for r in ort["img_s"].values() for v in r.values())
    assert report["projected_paper_70_epochs_hours"] == {} and "not projected" in report["projection_note"]
    assert "device check (cpu, cpu)" in proc.stdout
    assert not (ROOT / "check.json").exists()  # nothing written into the checkout

    # The CelebA config's whole pipeline, as its run left it (--keep): 64x64 RGB through every stage.
    repo, shape = work / "repo", [3, 64, 64]
    manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
    assert manifest["source"] == "celeba" and manifest["image_shape"] == shape
    results = read_results(repo / "reports/fid.json")
    assert results.feature_extractor == "inception" and results.protocol["inception_dims"] == 64
    assert set(results.metrics["fd"]) == {"isotropic", "mvg", "gmm", "reconstruction"}
    assert all(np.isfinite(v) for v in results.metrics["fd"].values())
    assert (repo / "reports/index.html").stat().st_size > 0
    card = json.loads((repo / "models/generator.json").read_text())
    assert card["image_shape"] == shape and card["dataset"] == "celeba"
    session = onnxruntime.InferenceSession(str(repo / "models/generator.onnx"), providers=["CPUExecutionProvider"])
    d = card["latent_dim"]
    images = session.run(None, {"noise": np.zeros((2, d), np.float32), "u": np.zeros(2, np.float32)})[0]
    assert list(images.shape) == [2, *shape]
    assert list((repo / "dvclive/plots/images/samples").glob("epoch_*.png"))
