"""Issue 22, class 2: the report never shows scores of another checkpoint as this run's. evaluate records
the sha256 of the checkpoint and density it scored (reports/fid.json ``protocol``); the report (and
export's model card) compare them with the files they show."""

from __future__ import annotations

import json

import pytest

from eae.evaluation.results import parse_results
from eae.export.card import sha256_file
from tests.helpers.workspace import module

pytestmark = pytest.mark.reliability

A, B = "a" * 64, "b" * 64


def record(**protocol) -> dict:
    return {"schema": "eae-results/2", "metrics": {"fd": {"gmm": 123.456, "mvg": 234.5}}, "protocol": protocol}


def test_provenance_known_answers():
    assert parse_results(record(checkpoint_sha256=A)).provenance_problem(A) is None
    assert parse_results(record(checkpoint_sha256=A, density_sha256=B)).provenance_problem(A, B) is None
    assert parse_results(record(checkpoint_sha256=A)).provenance_problem(B) == (
        "its scores belong to another checkpoint (sha256 aaaaaaaaaaaa…), not the current one (bbbbbbbbbbbb…)"
    )
    assert "another density" in parse_results(record(checkpoint_sha256=A, density_sha256=A)).provenance_problem(A, B)
    assert parse_results(record()).provenance_problem(A, B) is None  # recorded before the sha256s: unknown
    assert parse_results({"gmm": 1.0}).provenance_problem(A) is None  # the format-1 record


def test_evaluate_records_the_files_it_scored(workspace, monkeypatch):
    from pipelines.evaluate import protocol_of, scored_files

    monkeypatch.chdir(workspace)
    scored = scored_files()
    assert scored == {
        "checkpoint_sha256": sha256_file(workspace / "models/eae.pt"),
        "density_sha256": sha256_file(workspace / "models/density.npz"),
    }
    assert protocol_of.__code__.co_varnames[3] == "scored"


def test_report_context_refuses_the_scores_and_says_why():
    from eae.reporting.report import report_context

    problem = "its scores belong to another checkpoint (sha256 aaaaaaaaaaaa…), not the current one (bbbbbbbbbbbb…)"
    context = report_context(run={"dataset": "digits", "params": {}}, fid=record(), samples={}, fid_problem=problem)
    assert all(row["value"] is None for row in context["fid_table"]["rows"])
    assert all(row["fd"] is None for row in context["quality"]) and context["protocol"] is None
    assert context["missing"][0].startswith(f"reports/fid.json is not this run's: {problem}")
    assert any(note.startswith("reports/fid.json is not this run's") for note in context["fid_table"]["notes"])


def test_report_after_a_retrain_without_evaluate_does_not_show_the_old_scores(workspace):
    """Before: `python -m pipelines.report` after a retrain showed the previous model's scores as this
    run's, exit 0."""
    fid = workspace / "reports/fid.json"
    fid.write_text(json.dumps(record(checkpoint_sha256=A)))  # the scores of another checkpoint
    proc = module("pipelines.report", cwd=workspace)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reports/fid.json is not this run's: its scores belong to another checkpoint" in proc.stderr
    page = (workspace / "reports/index.html").read_text()
    assert "is not this run&#39;s" in page and "123.46" not in page and "234.50" not in page

    current = {"checkpoint_sha256": sha256_file(workspace / "models/eae.pt")}
    fid.write_text(json.dumps(record(**current, density_sha256=sha256_file(workspace / "models/density.npz"))))
    proc = module("pipelines.report", cwd=workspace)
    assert proc.returncode == 0 and "not this run" not in proc.stderr
    page = (workspace / "reports/index.html").read_text()
    assert "123.46" in page and "234.50" in page and "not this run" not in page
