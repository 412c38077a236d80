"""End-to-end: the whole DVC pipeline on a tiny config in a temporary copy of the repository."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from eae.evaluation.results import parse_results, read_results
from eae.export.readme import read_front_matter
from tests.helpers.browser import WIDTH, check_page, require_chromium, screenshot
from tests.helpers.repos import repo_env, reproduced_tiny_repo, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """A committed copy of the tracked files with params.yaml shrunk to TINY, after `dvc repro`."""
    return reproduced_tiny_repo(tmp_path_factory.mktemp("smoke") / "repo"), repo_env()


def test_repro_writes_every_output(reproduced):
    dst, _ = reproduced
    manifest = json.loads((dst / "data/prepared/manifest.json").read_text())
    assert manifest["image_shape"] == [1, 16, 16]
    assert manifest["splits"]["train"]["count"] + manifest["splits"]["test"]["count"] == 1797
    results = read_results(dst / "reports/fid.json")
    fd = results.metrics["fd"]
    assert set(fd) == {"isotropic", "mvg", "gmm", "reconstruction"} and set(results.metrics) >= {"kid", "precision"}
    assert results.protocol["n_generated"] == 300 and results.feature_extractor == "classifier"
    assert all(np.isfinite(v) and v >= 0 for v in fd.values())
    train = json.loads((dst / "reports/train_metrics.json").read_text())
    assert train["epochs"] == 2
    assert (dst / "dvclive/plots/metrics/train/entropy.tsv").read_text().count("\n") == 3  # header + 2 epochs
    html = (dst / "reports/index.html").read_text()
    # 3 sample grids, reconstructions, interpolations, 4 latent figures, GMM weights, curves, ONNX grid
    assert "Fréchet" in html and html.count("data:image/png;base64,") == 12
    assert "Missing from this run" not in html and "no experiments" in html

    session = ort.InferenceSession(str(dst / "models/generator.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["latent_dim"] == "4" and meta["sampler"] == "gmm" and meta["dataset"] == "digits"
    assert json.loads(meta["image_shape"]) == [1, 16, 16]
    images = session.run(None, {"noise": np.zeros((5, 4), np.float32), "u": np.full(5, 0.5, np.float32)})[0]
    assert images.shape == (5, 1, 16, 16) and 0 <= images.min() and images.max() <= 1
    assert (dst / "models/decoder.onnx").stat().st_size > 0
    assert meta["Image.BitmapPixelFormat"] == "Gray8" and session.get_modelmeta().producer_name == "eae"
    z_session = ort.InferenceSession(str(dst / "models/generator_z.onnx"), providers=["CPUExecutionProvider"])
    z = np.zeros((3, 5), np.float32)  # noise_dim 4 + the component column
    assert z_session.run(None, {"z": z})[0].shape == (3, 3, 16, 16)
    card = read_front_matter((dst / "models/README.md").read_text())
    metrics = {m["type"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert metrics["frechet_distance_classifier"] == round(fd["gmm"], 6)  # and KID, precision, recall of gmm
    assert len(metrics) > 1 and all(np.isfinite(v) for v in metrics.values())
    assert "models" in (dst / "models/.gitignore").read_text() or "/eae.pt" in (dst / "models/.gitignore").read_text()


def test_report_in_chromium(reproduced, tmp_path):
    chromium = require_chromium()
    dst, _ = reproduced
    page = dst / "reports/index.html"
    verdict = check_page(chromium, page, tmp_path)
    assert verdict["images"] == page.read_text().count("<img") > 0
    assert verdict["broken"] == [] and verdict["errors"] == [] and verdict["external"] == []
    assert verdict["width"] <= WIDTH
    assert screenshot(chromium, page, tmp_path / "report.png", verdict["height"]).stat().st_size > 0


def test_second_repro_is_a_no_op(reproduced):
    dst, env = reproduced
    out = sh(["dvc", "repro"], dst, env)
    assert "Data and pipelines are up to date" in out


def test_entropy_weight_invalidates_train_not_prepare(reproduced):
    dst, env = reproduced
    params = (dst / "params.yaml").read_text()
    try:
        changed = yaml.safe_load(params)
        changed["entropy_weight"] = 0.25
        (dst / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
        status = json.loads(sh(["dvc", "status", "--json"], dst, env))
    finally:
        (dst / "params.yaml").write_text(params)
    # Only train depends on entropy_weight directly (and check, which validates every key of params.yaml and
    # writes the same words each time, so it reruns nothing after it); the stages after train rerun because
    # models/eae.pt changes (checked by the experiment below), prepare and the classifier never.
    assert set(status) == {"check", "train"}


def test_experiment_with_another_entropy_weight(reproduced):
    dst, env = reproduced
    sh(["git", "add", "-A"], dst, env)
    sh(["git", "commit", "-qm", "baseline results"], dst, env)
    ran = sh(["dvc", "exp", "run", "-S", "entropy_weight=0.5", "--name", "beta05"], dst, env)
    rows = json.loads(sh(["dvc", "exp", "show", "--json"], dst, env))
    text = json.dumps(rows)
    assert "beta05" in text

    def fid_of(entry):
        data = entry.get("data") or {}
        return parse_results(data.get("metrics", {}).get("reports/fid.json", {}).get("data", {}))

    head = next(row for row in rows if row.get("experiments"))  # the committed baseline and its experiments
    baseline = fid_of(head)
    experiment = [fid_of(e) for exp in head["experiments"] for e in exp.get("revs", []) if e.get("name") == "beta05"][0]
    assert baseline.value("fd", "gmm") is not None and baseline.value("fd", "gmm") != experiment.value("fd", "gmm")
    # `dvc exp show` works inside the running experiment's report stage: it lists beta05 and both betas.
    html = (dst / "reports/index.html").read_text()
    assert "beta05" in html and "FID against entropy_weight" in html
    # The experiment reran train and everything after it, never prepare or the classifier.
    assert "Stage 'prepare' didn't change, skipping" in ran
    assert "Stage 'feature_stats' didn't change, skipping" in ran
    for stage in ("train", "fit_density", "export", "evaluate", "report"):
        assert f"Running stage '{stage}'" in ran


def test_another_objective_as_a_temp_experiment(reproduced):
    """`dvc exp run --temp -S model.objective=...` on its own: the whole pipeline with another objective,
    in a temporary workspace, listed by dvc exp show; the workspace itself is left alone."""
    dst, env = reproduced
    sh(["git", "add", "-A"], dst, env)
    sh(["git", "commit", "-qm", "results", "--allow-empty"], dst, env)
    before = (dst / "reports/fid.json").read_text()
    sh(
        [
            "dvc",
            "exp",
            "run",
            "--temp",
            "-S",
            "model.objective=two_stage_vae",
            "-S",
            "export.sampler=two_stage",
            "--name",
            "temp-2svae",
        ],
        dst,
        env,
    )
    assert (dst / "reports/fid.json").read_text() == before
    rows = json.loads(sh(["dvc", "exp", "show", "--json"], dst, env))
    exp = [
        e
        for row in rows
        for x in (row.get("experiments") or [])
        for e in x.get("revs", [])
        if e.get("name") == "temp-2svae"
    ][0]
    fid = parse_results(exp["data"]["metrics"]["reports/fid.json"]["data"])
    assert (
        np.isfinite(fid.value("fd", "two_stage"))
        and exp["data"]["params"]["params.yaml"]["data"]["model"]["objective"] == "two_stage_vae"
    )
