"""The model card for people (models/README.md): Hugging Face front matter, sections, one source of truth."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from eae.card import make_card
from eae.density import fit_gmm
from eae.errors import EAEError
from eae.generator import Generator, export_onnx, export_z_onnx, image_metadata
from eae.modelcard import evaluation_results, front_matter, read_front_matter, render_model_card
from eae.networks import ArchConfig
from eae.objectives import build_objective

FID = {"feature_extractor": "classifier", "metric": "Fréchet distance in digits-classifier features (not Inception FID)",
       "n_samples": 300, "n_test": 359, "classifier_test_accuracy": 0.98,
       "isotropic": 6.5, "mvg": 6.25, "gmm": 3.125, "reconstruction": 1.5}
REQUIRED = ("license", "library_name", "tags", "datasets", "metrics", "model-index")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """generator.onnx, decoder.onnx, generator_z.onnx and the card dict for them (as the export stage makes)."""
    out = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = build_objective("eae", ArchConfig((1, 8, 8), 3, (8, 16), (16, 8)), {"entropy_weight": 0.1})
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    gen = Generator(fit_gmm(np.random.default_rng(0).standard_normal((300, 3)), 4, seed=0), model.decoder).eval()
    meta = {"latent_dim": 3, "noise_dim": 3, "image_shape": "[1, 8, 8]", "sampler": "gmm",
            **image_metadata(1, uint8=False)}
    export_onnx(gen, (torch.randn(2, 3), torch.rand(2)), ["noise", "u"], out / "generator.onnx", meta)
    export_onnx(model.decoder.baked(), (torch.randn(2, 3),), ["latent"], out / "decoder.onnx", meta)
    export_z_onnx(gen, out / "generator_z.onnx", meta)

    def card(evaluation=FID):
        return make_card(out / "generator.onnx", out / "decoder.onnx", latent_dim=3, noise_dim=3, image_shape=[1, 8, 8],
                         sampler="gmm", n_components=4, dataset="digits", opset=18,
                         training={"objective": {"name": "eae", "weights": {"entropy_weight": 0.1}}, "seed": 0,
                                   "model": {"latent_dim": 3}, "train": {"epochs": 2}, "data_hash": "abc123",
                                   "metrics": {"recon": 2.5}},
                         evaluation=evaluation, z_path=out / "generator_z.onnx")
    return out, card


def test_front_matter_parses_with_the_required_keys(models):
    _, card = models
    text = render_model_card(card())
    meta = read_front_matter(text)
    assert all(meta.get(key) for key in REQUIRED), {key: meta.get(key) for key in REQUIRED}
    assert meta["license"] == "mit" and meta["library_name"] == "onnx"
    assert meta["pipeline_tag"] == "unconditional-image-generation" and "onnx" in meta["tags"]
    assert meta["datasets"] == ["digits"] and meta["metrics"] == ["frechet_distance_classifier"]
    (entry,) = meta["model-index"]
    assert entry["name"] == "eae-digits-gmm"
    (result,) = entry["results"]
    assert result["task"]["type"] == "unconditional-image-generation"
    assert result["dataset"]["type"] == "digits" and result["dataset"]["split"] == "test"
    (metric,) = result["metrics"]  # the exported sampler's Fréchet distance, with its protocol
    assert metric["type"] == "frechet_distance_classifier" and metric["value"] == 3.125
    assert metric["args"] == {"feature_extractor": "classifier", "n_samples": 300, "n_test": 359,
                              "classifier_test_accuracy": 0.98, "sampler": "gmm"}
    assert "not Inception FID" in metric["name"] and metric["verified"] is False


def test_sections_a_consumer_expects(models):
    _, card = models
    text = render_model_card(card())
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == ["Intended use", "How to sample", "Input contract", "Training data and parameters",
                        "Evaluation", "Limitations", "Files"]
    assert "**not Inception FIDs**" in text  # digits numbers are classifier-feature distances
    assert "| **gmm** | 3.1250 |" in text and "| mvg | 6.2500 |" in text and "| reconstruction | 1.5000 |" in text
    assert "`entropy_weight=0.1`" in text and "`abc123`" in text


def test_card_and_readme_come_from_the_same_data(models):
    """Every sha256 and every evaluation number of generator.json appears in README.md."""
    _, card = models
    data = card()
    text = render_model_card(data)
    for sha in (data["sha256"], data["decoder"]["sha256"], data["z_generator"]["sha256"]):
        assert f"`{sha}`" in text
    assert f"--input1-model-z-size {data['z_generator']['z_size']}" in text and data["z_generator"]["z_size"] == 4


def test_how_to_sample_snippet_runs_beside_the_models(models):
    out, card = models
    text = render_model_card(card())
    (snippet,) = re.findall(r"```python\n(.*?)```", text, re.S)
    code = snippet + "\nassert images.shape == (16, 1, 8, 8) and pixels.dtype == np.uint8 and pixels.shape == (16, 8, 8, 1)\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("extra", [
    {"kid": {"gmm": 0.02, "mvg": 0.05}, "precision": {"gmm": 0.7}},                       # metric -> sampler
    {"gmm": {"frechet": 3.125, "kid": 0.02, "precision": 0.7}, "mvg": {"kid": 0.05}},      # sampler -> metric
    {"gmm_kid": 0.02, "mvg_kid": 0.05, "gmm_precision": 0.7},                             # <sampler>_<metric>
])
def test_model_index_carries_whatever_metrics_fid_json_holds(models, extra):
    _, card = models
    meta = read_front_matter(render_model_card(card({**FID, **extra})))
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values == {"frechet_distance_classifier": 3.125, "kid_classifier": 0.02, "precision_classifier": 0.7}
    assert meta["metrics"] == sorted(values)


def test_evaluation_results_split_rows_from_protocol():
    rows, protocol = evaluation_results({**FID, "kid": {"gmm": 0.5}})
    assert [(r["sampler"], r["metric"]) for r in rows] == [("isotropic", "frechet"), ("mvg", "frechet"),
                                                           ("gmm", "frechet"), ("gmm", "kid"),
                                                           ("reconstruction", "frechet")]
    assert protocol == {k: FID[k] for k in ("feature_extractor", "metric", "n_samples", "n_test",
                                            "classifier_test_accuracy")}


def test_inception_numbers_are_called_fid(models):
    _, card = models
    meta = front_matter(card({**FID, "feature_extractor": "inception", "metric": "FID (Inception-v3 features)"}))
    assert meta["metrics"] == ["fid"]


def test_no_evaluation_still_renders(models):
    _, card = models
    text = render_model_card(card({}))
    assert read_front_matter(text)["model-index"][0]["results"] == []
    assert "No evaluation was recorded" in text


@pytest.mark.parametrize("text, match", [("# no front matter\n", "no YAML front matter"),
                                         ("---\n[unclosed\n---\nbody", "not valid YAML"),
                                         ("---\n- a list\n---\nbody", "not a mapping")])
def test_bad_front_matter_is_one_clear_error(text, match):
    with pytest.raises(EAEError, match=match):
        read_front_matter(text)


def test_card_json_is_unchanged_by_rendering(models):
    _, card = models
    data = card()
    before = json.dumps(data, sort_keys=True)
    render_model_card(data)
    assert json.dumps(data, sort_keys=True) == before
