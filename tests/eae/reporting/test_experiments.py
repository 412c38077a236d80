import pytest

from eae.reporting.experiments import fid_points, flatten, parse_exp_show, varying_params
from tests.helpers.report_inputs import exp_show_rows


def test_parse_exp_show_records():
    records = parse_exp_show(exp_show_rows(betas=(0.05, 0.5, 1.0), fids=((7, 6, 2, 1), (8, 7, 3, 1), (9, 8, 4, 1))))
    # The workspace equals the baseline commit here, so only the commit is listed.
    assert [(r["name"], r["kind"]) for r in records] == [
        ("main", "baseline"),
        ("exp1", "experiment"),
        ("exp2", "experiment"),
    ]
    exp1 = records[1]
    assert exp1["baseline"] == "aaaaaaa" and exp1["status"] == "success" and exp1["error"] is None
    assert exp1["params"]["entropy_weight"] == 0.5 and exp1["params"]["train.lr"] == 0.001
    assert exp1["fid"] == {"isotropic": 8, "mvg": 7, "gmm": 3, "reconstruction": 1}
    assert exp1["feature_extractor"] == "classifier"
    assert varying_params(records) == ["entropy_weight"]
    points = fid_points(records, "digits", "classifier")
    assert sorted(p["entropy_weight"] for p in points) == [0.05, 0.5, 1.0]
    assert fid_points(records, "cifar10") == []


def test_workspace_kept_when_it_differs_from_every_record():
    rows = exp_show_rows()
    rows[0]["data"]["params"]["params.yaml"]["data"]["entropy_weight"] = 2.0
    records = parse_exp_show(rows)
    assert records[0]["kind"] == "workspace" and records[0]["params"]["entropy_weight"] == 2.0
    assert len(records) == 3


def test_queued_skipped_failed_kept():
    rows = exp_show_rows()
    exp = rows[1]["experiments"][0]
    failed = {
        **exp,
        "name": "broken",
        "executor": {"state": "failed"},
        "revs": [
            {**exp["revs"][0], "name": "broken", "data": None, "error": {"msg": "stage train failed", "type": ""}}
        ],
    }
    queued = {**exp, "name": "later", "executor": {"state": "queued"}}
    rows[1]["experiments"] += [failed, queued]
    records = parse_exp_show(rows)
    names = [r["name"] for r in records]
    assert "later" not in names
    broken = records[names.index("broken")]
    assert broken["status"] == "failed" and broken["error"] == "stage train failed" and broken["fid"] == {}


def test_parse_exp_show_rejects_non_lists_and_tolerates_junk():
    with pytest.raises(ValueError):
        parse_exp_show({"rev": "workspace"})
    assert parse_exp_show([None, "x"]) == []
    assert parse_exp_show([{"rev": "workspace"}])[0]["params"] == {}


def test_flatten():
    assert flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}}) == {"a": 1, "b.c": [1, 2], "b.d.e": None}
