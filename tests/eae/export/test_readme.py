"""The model card for people (models/README.md): Hugging Face front matter, sections, one source of truth."""

import json
import re
import subprocess
import sys

import pytest

from eae.errors import EAEError
from eae.export.readme import evaluation_results, front_matter, read_front_matter, render_model_card
from tests.helpers.generator import card as make_card_for

PROTOCOL = {
    "feature_extractor": "classifier",
    "metric_name": "Fréchet distance in digits-classifier features (not Inception FID)",
    "n_generated": 300,
    "reference": {"split": "test", "n": 359},
    "classifier_test_accuracy": 0.98,
}
FD = {"isotropic": 6.5, "mvg": 6.25, "gmm": 3.125, "reconstruction": 1.5}
FID = {"schema": "eae-results/2", "metrics": {"fd": FD}, "protocol": PROTOCOL}
# The same evaluation as the evaluate stage wrote it before eae.evaluation.results (old promoted cards hold it).
FID_V1 = {
    "feature_extractor": "classifier",
    "metric": PROTOCOL["metric_name"],
    "n_samples": 300,
    "n_test": 359,
    "classifier_test_accuracy": 0.98,
    **FD,
}
REQUIRED = ("license", "library_name", "tags", "datasets", "metrics", "model-index")


@pytest.fixture
def models(tiny_generator):
    """The shared tiny export and a card builder for it (as the export stage makes it, for digits)."""
    out = tiny_generator.folder

    def card(evaluation=FID):
        return make_card_for(out, evaluation, dataset="digits")

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
    assert metric["args"] == {
        "feature_extractor": "classifier",
        "n_generated": 300,
        "n_test": 359,
        "classifier_test_accuracy": 0.98,
        "sampler": "gmm",
    }
    assert "not Inception FID" in metric["name"] and metric["verified"] is False


def test_sections_a_consumer_expects(models):
    _, card = models
    text = render_model_card(card())
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == [
        "Intended use",
        "How to sample",
        "Input contract",
        "Training data and parameters",
        "Evaluation",
        "Limitations",
        "Files",
    ]
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
    code = (
        snippet
        + "\nassert images.shape == (16, 1, 8, 8) and pixels.dtype == np.uint8 and pixels.shape == (16, 8, 8, 1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_model_index_carries_every_metric_of_the_exported_sampler(models):
    _, card = models
    evaluation = {**FID, "metrics": {"fd": FD, "kid": {"gmm": 0.02, "mvg": 0.05}, "precision": {"gmm": 0.7}}}
    meta = read_front_matter(render_model_card(card(evaluation)))
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values == {"frechet_distance_classifier": 3.125, "kid_classifier": 0.02, "precision_classifier": 0.7}
    assert meta["metrics"] == sorted(values)


def test_a_card_with_the_first_record_layout_renders_the_same(models):
    _, card = models
    assert render_model_card(card(FID_V1)) == render_model_card(card(FID))


def test_evaluation_results_split_rows_from_protocol():
    rows, protocol = evaluation_results({**FID, "metrics": {"fd": FD, "kid": {"gmm": 0.5}}})
    assert [(r["sampler"], r["metric"]) for r in rows] == [
        ("isotropic", "fd"),
        ("mvg", "fd"),
        ("gmm", "fd"),
        ("gmm", "kid"),
        ("reconstruction", "fd"),
    ]
    assert protocol == {
        "feature_extractor": "classifier",
        "metric_name": PROTOCOL["metric_name"],
        "n_generated": 300,
        "classifier_test_accuracy": 0.98,
        "n_test": 359,
    }


def test_inception_numbers_are_called_fid(models):
    _, card = models
    inception = {**PROTOCOL, "feature_extractor": "inception", "metric_name": "FID (Inception-v3 features)"}
    meta = front_matter(card({**FID, "protocol": inception}))
    assert meta["metrics"] == ["fid"]


def test_no_evaluation_still_renders(models):
    _, card = models
    text = render_model_card(card({}))
    assert read_front_matter(text)["model-index"][0]["results"] == []
    assert "No evaluation was recorded" in text


@pytest.mark.parametrize(
    "text, match",
    [
        ("# no front matter\n", "no YAML front matter"),
        ("---\n[unclosed\n---\nbody", "not valid YAML"),
        ("---\n- a list\n---\nbody", "not a mapping"),
    ],
)
def test_bad_front_matter_is_one_clear_error(text, match):
    with pytest.raises(EAEError, match=match):
        read_front_matter(text)


def test_card_json_is_unchanged_by_rendering(models):
    _, card = models
    data = card()
    before = json.dumps(data, sort_keys=True)
    render_model_card(data)
    assert json.dumps(data, sort_keys=True) == before
