"""The evaluation record's one schema and reader (reports/fid.json)."""

import json
import math

import pytest

from eae.errors import EAEError
from eae.evaluation.results import COLUMNS, SCHEMA, Results, parse_results, read_results

V2 = {
    "schema": SCHEMA,
    "metrics": {
        "fd": {"isotropic": 7.0, "mvg": 6.8, "gmm": 3.7, "reconstruction": 0.98},
        "kid": {"gmm": 8.3, "reconstruction": 1.7},
        "kid_std": {"gmm": 1.4, "reconstruction": 0.0},
        "precision": {"gmm": 0.75},
        "recall": {"gmm": 0.84},
        "class_entropy": {"gmm": 2.26},
    },
    "class_shares": {"gmm": [0.5, 0.5]},
    "protocol": {
        "feature_extractor": "classifier",
        "metric_name": "FD",
        "n_generated": 10000,
        "reference": {"split": "test", "n": 359},
        "classifier_test_accuracy": 0.986,
    },
}
# The same evaluation in the layout the evaluate stage wrote before the schema.
V1 = {
    "class_entropy": {"gmm": 2.26},
    "class_shares": {"gmm": [0.5, 0.5]},
    "classifier_test_accuracy": 0.986,
    "feature_extractor": "classifier",
    "gmm": 3.7,
    "isotropic": 7.0,
    "mvg": 6.8,
    "reconstruction": 0.98,
    "kid": {"gmm": {"mean": 8.3, "std": 1.4}, "reconstruction": {"mean": 1.7, "std": 0.0}},
    "metric": "FD",
    "n_samples": 10000,
    "n_test": 359,
    "precision": {"gmm": 0.75},
    "recall": {"gmm": 0.84},
}


def test_round_trip_and_access():
    results = parse_results(V2)
    assert parse_results(json.loads(json.dumps(results.to_dict()))) == results
    assert results.value("fd", "gmm") == 3.7 and results.value("kid", "mvg") is None
    assert results.columns == ["isotropic", "mvg", "gmm", "reconstruction"]
    assert results.feature_extractor == "classifier"
    rows = results.rows()
    assert rows[0] == {"sampler": "isotropic", "metric": "fd", "value": 7.0}
    assert [r["metric"] for r in rows if r["sampler"] == "gmm"] == [
        "fd",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "class_entropy",
    ]


def test_the_first_layout_reads_as_the_same_results():
    old, new = parse_results(V1), parse_results(V2)
    assert old.metrics == new.metrics and old.class_shares == new.class_shares
    assert {k: old.protocol[k] for k in new.protocol} == new.protocol


def test_non_scores_are_left_out():
    results = parse_results(
        {
            "schema": SCHEMA,
            "metrics": {
                "fd": {"gmm": math.nan, "mvg": True, "isotropic": "7", "two_stage": math.inf, "reconstruction": 1.0},
                "bogus": {"gmm": 1.0},
                "kid": {"unknown_sampler": 2.0},
            },
        }
    )
    assert results.metrics == {"fd": {"reconstruction": 1.0}}
    assert set(COLUMNS) >= set(results.columns)


def test_empty_unknown_and_unreadable_records(tmp_path):
    assert parse_results({}) == Results({}, {}, {})
    with pytest.raises(EAEError, match="unknown evaluation record schema 'eae-results/9'"):
        parse_results({"schema": "eae-results/9"})
    with pytest.raises(EAEError, match="must be a JSON object"):
        parse_results([1, 2])
    with pytest.raises(EAEError, match="missing file .*fid.json"):
        read_results(tmp_path / "fid.json")
    (tmp_path / "fid.json").write_text("{not json")
    with pytest.raises(EAEError, match="corrupt JSON in .*fid.json"):
        read_results(tmp_path / "fid.json")


def test_per_column_rows_are_the_chart_data():
    results = parse_results(
        {
            "schema": SCHEMA,
            "metrics": {"fd": {"gmm": 1.5, "mvg": 2.5, "reconstruction": 0.5}, "precision": {"gmm": 0.75}},
            "protocol": {},
        }
    )
    assert results.per_column() == [
        {"sampler": "mvg", "fd": 2.5},
        {"sampler": "gmm", "fd": 1.5, "precision": 0.75},
        {"sampler": "reconstruction", "fd": 0.5},
    ]
