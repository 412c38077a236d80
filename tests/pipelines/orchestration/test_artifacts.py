"""The retrain run's Prefect artifacts as data: the FID table, the promotion summary, the regression event."""

import json

from eae.export.card import FORMAT
from pipelines.orchestration.artifacts import fid_table, promoted_evaluation, promotion_markdown, regression

THIS = {
    "schema": "eae-results/2",
    "protocol": {"feature_extractor": "classifier", "n_generated": 300},
    "metrics": {"fd": {"isotropic": 6.0, "gmm": 3.0, "reconstruction": 1.0}, "kid": {"gmm": 0.02}},
}
# a promoted model's card written before the results schema: its evaluation in the first record layout
BEFORE = {"feature_extractor": "classifier", "n_samples": 300, "isotropic": 5.5, "gmm": 3.5, "mvg": 7.0}


def decision(promoted: bool, candidate: float, previous: float | None, extractor="classifier"):
    return {
        "promoted": promoted,
        "reason": "why",
        "metric": "gmm",
        "candidate": {"value": candidate, "feature_extractor": "classifier", "sampler": "gmm", "sha256": "ab" * 32},
        "previous": None
        if previous is None
        else {"value": previous, "feature_extractor": extractor, "evaluation": BEFORE},
        "revision": {"git_commit": "c0ffee", "git_dirty": True, "dvc_generator_md5": "d41d8"},
    }


def test_fid_table_is_sampler_by_metric_this_run_vs_promoted():
    rows = fid_table(THIS, BEFORE)
    assert rows == [
        {"sampler": "isotropic", "metric": "fd", "this run": 6.0, "promoted": 5.5, "change": 0.5},
        {"sampler": "gmm", "metric": "fd", "this run": 3.0, "promoted": 3.5, "change": -0.5},
        {"sampler": "gmm", "metric": "kid", "this run": 0.02, "promoted": None, "change": None},
        {"sampler": "reconstruction", "metric": "fd", "this run": 1.0, "promoted": None, "change": None},
        {"sampler": "mvg", "metric": "fd", "this run": None, "promoted": 7.0, "change": None},
    ]
    assert all(row["promoted"] is None for row in fid_table(THIS, None))


def test_regression_only_when_worse_than_a_comparable_promoted_model():
    assert regression(decision(False, 3.0, 2.5)) == {
        "metric": "gmm",
        "candidate": 3.0,
        "promoted": 2.5,
        "feature_extractor": "classifier",
        "reason": "why",
    }
    assert regression(decision(True, 2.0, 2.5)) is None  # better: promoted
    assert regression(decision(False, 2.5, 2.5)) is None  # same model rerun: no regression
    assert regression(decision(False, 3.0, 2.5, "inception")) is None  # not comparable
    assert regression(decision(True, 3.0, None)) is None  # first model
    assert regression(None) is None  # --no-promote


def test_promotion_markdown_names_decision_revisions_and_report(tmp_path):
    text = promotion_markdown(tmp_path, decision(False, 3.0, 2.5), decision(False, 3.0, 2.5)["revision"])
    assert text.startswith("# eae-retrain: kept the promoted generator")
    assert "| gmm | this run 3.0000, promoted before 2.5000 |" in text
    assert "`c0ffee` (working tree dirty)" in text and "`d41d8`" in text and "ab" * 32 in text
    assert str(tmp_path.resolve() / "reports" / "index.html") in text
    first = promotion_markdown(tmp_path, decision(True, 3.0, None), {"git_commit": None})
    assert "promoted before none" in first and "not a git repository" in first and "not in dvc.lock" in first
    assert "promotion not evaluated" in promotion_markdown(tmp_path, None, {})


def test_promoted_evaluation(tmp_path):
    assert promoted_evaluation(tmp_path) is None
    promoted = tmp_path / "models" / "promoted"
    promoted.mkdir(parents=True)
    (promoted / "generator.json").write_text(json.dumps({"format": FORMAT, "sha256": "ab" * 32, "evaluation": BEFORE}))
    assert promoted_evaluation(tmp_path) == BEFORE
    (promoted / "generator.json").write_text("{corrupt")
    assert promoted_evaluation(tmp_path) is None


def test_promotion_markdown_shows_the_registry():
    from pipelines.orchestration.artifacts import registry_row

    outcome = {
        "registered": True,
        "commit": "abc123",
        "artifacts": {"eae-generator": {"version": "v0.0.2", "stage": "prod", "path": "models/generator.onnx"}},
    }
    assert registry_row(outcome) == "| registry | eae-generator v0.0.2 (prod) at commit `abc123` |"
    assert registry_row({"registered": False, "reason": "not a git repository"}) == (
        "| registry | not registered: not a git repository |"
    )
