import pytest

from eae.evaluation.table1 import aggregate, best_sampler, metric_value, wins


def fid(gmm, iso, recon=1.0, kid=None, precision=None):
    """The metrics of one run's evaluation record ({metric: {column: value}}, eae.evaluation.results)."""
    metrics = {"fd": {"gmm": gmm, "isotropic": iso, "mvg": iso - 1, "reconstruction": recon}}
    if kid is not None:
        metrics["kid"] = {"gmm": kid}
    if precision is not None:
        metrics["precision"] = {"gmm": precision}
    return metrics


RUNS = [
    {"objective": "eae", "seed": 0, "metrics": fid(2.0, 5.0, kid=1.0, precision=0.8)},
    {"objective": "eae", "seed": 1, "metrics": fid(2.2, 5.4, kid=1.2, precision=0.9)},
    {"objective": "ae", "seed": 1, "metrics": fid(3.0, 9.0, kid=2.0, precision=0.7)},
    {"objective": "ae", "seed": 0, "metrics": fid(3.4, 9.5, kid=2.2, precision=0.75)},
]


def test_mean_std_over_seeds_and_best_per_column():
    table = aggregate(RUNS, ["eae", "ae"], "cifar10")
    assert table["columns"] == ["isotropic", "mvg", "gmm", "reconstruction"]
    eae, ae = table["rows"]
    assert eae["seeds"] == [0, 1] and ae["seeds"] == [0, 1]
    gmm = eae["cells"]["fd"]["gmm"]
    assert gmm["mean"] == pytest.approx(2.1) and gmm["std"] == pytest.approx(0.1414213562) and gmm["n"] == 2
    assert ae["cells"]["fd"]["gmm"]["values"] == [3.4, 3.0]  # ordered by seed
    assert table["best"]["fd"] == {"isotropic": "eae", "mvg": "eae", "gmm": "eae", "reconstruction": "eae"}
    assert table["best"]["precision"] == {"gmm": "eae"}  # higher is better
    assert table["paper"]["eae"]["gmm"] == 73.12 and table["paper"]["ae"].get("isotropic") is None
    assert aggregate(RUNS, ["eae"], "digits")["paper"] is None


def test_missing_or_non_finite_values_are_left_out():
    assert metric_value({"fd": {"gmm": float("nan")}}, "fd", "gmm") is None
    assert metric_value({"kid": {"gmm": 0.5}}, "kid", "gmm") == 0.5
    assert metric_value({}, "kid", "gmm") is None
    one = aggregate([{"objective": "vae", "seed": 0, "metrics": {"fd": {"gmm": 1.0}}}], ["vae"])
    assert one["rows"][0]["cells"]["fd"]["gmm"] == {"mean": 1.0, "std": None, "n": 1, "values": [1.0]}


def test_wins_needs_a_margin_of_both_standard_deviations():
    table = aggregate(RUNS, ["eae", "ae"])
    assert best_sampler(table["rows"][1], "fd") == ("gmm", table["rows"][1]["cells"]["fd"]["gmm"])
    verdict = wins(table, "eae", "gmm", "fd")
    assert verdict["wins"]  # 2.1 ± 0.14 vs ae's best 3.2 ± 0.28
    gap, needed, against = verdict["margins"]["ae"]
    assert gap == pytest.approx(1.1) and against == "gmm"
    assert not wins(table, "eae", "isotropic", "fd")["wins"]  # 5.2 vs 3.2: worse than ae's gmm
    close = aggregate(
        [
            *RUNS[:2],
            {"objective": "ae", "seed": 0, "metrics": fid(2.15, 9.0)},
            {"objective": "ae", "seed": 1, "metrics": fid(2.4, 9.0)},
        ],
        ["eae", "ae"],
    )
    assert not wins(close, "eae", "gmm", "fd")["wins"]  # better mean, but within the spread
