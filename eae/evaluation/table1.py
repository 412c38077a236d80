"""Table 1: objectives × samplers, aggregated over training seeds (plain data, no DVC import).

Input: one run per (objective, seed), each with the metrics of its ``reports/fid.json``
(``{metric: {column: value}}``, ``eae.evaluation.results``). Output: per objective and metric, the mean,
sample standard deviation (ddof = 1) and values of every sampler column over the seeds, the
best objective per column, and the paper's numbers where it has them.

Metrics: ``fd`` (Fréchet distance; FID with Inception features), ``kid`` (mean of the KID
subsets), ``precision`` and ``recall``. FD and KID: lower is better; precision and recall:
higher is better.
"""

from __future__ import annotations

import math
import statistics

from eae.evaluation import results
from eae.reporting.paper import display_name, paper_row

COLUMNS = results.COLUMNS
METRICS = ("fd", "kid", "precision", "recall")
LOWER_IS_BETTER = {m: results.METRICS[m] for m in METRICS}
SAMPLER_COLUMNS = results.ALL_SAMPLERS


def metric_value(metrics: dict, metric: str, column: str) -> float | None:
    """One metric of one column (None when absent or not finite)."""
    value = (metrics.get(metric) or {}).get(column)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def summarise(values: list[float]) -> dict:
    """{"mean", "std" (ddof = 1; None for one value), "n", "values"}."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
        "values": values,
    }


def better(metric: str, a: float, b: float) -> bool:
    return a < b if LOWER_IS_BETTER[metric] else a > b


def aggregate(runs: list[dict], objectives: list[str], dataset: str | None = None) -> dict:
    """runs: [{"objective", "seed", "metrics": {metric: {column: value}}}] -> the table (see module doc).

    rows follow ``objectives``; a column appears when any run has it; ``best[metric][column]`` is
    the objective with the best mean; ``paper[objective][column]`` the paper's FID (CIFAR-10 and
    CelebA only)."""
    columns = [c for c in COLUMNS if any(metric_value(r["metrics"], "fd", c) is not None for r in runs)]
    rows = []
    for objective in objectives:
        mine = sorted((r for r in runs if r["objective"] == objective), key=lambda r: r["seed"])
        cells: dict[str, dict] = {}
        for metric in METRICS:
            cells[metric] = {}
            for column in columns:
                values = [v for r in mine if (v := metric_value(r["metrics"], metric, column)) is not None]
                if values:
                    cells[metric][column] = summarise(values)
        rows.append(
            {
                "objective": objective,
                "name": display_name(objective),
                "seeds": [r["seed"] for r in mine],
                "cells": cells,
            }
        )
    best: dict[str, dict[str, str]] = {}
    for metric in METRICS:
        best[metric] = {}
        for column in columns:
            scored = [
                (row["cells"][metric][column]["mean"], row["objective"])
                for row in rows
                if column in row["cells"][metric]
            ]
            if scored:
                # ties go to the first objective in row order
                pick = (min if LOWER_IS_BETTER[metric] else max)(scored, key=lambda item: item[0])
                best[metric][column] = pick[1]
    paper = {o: row for o in objectives if (row := paper_row(o, dataset or "")) is not None}
    return {"columns": columns, "metrics": list(METRICS), "rows": rows, "best": best, "paper": paper or None}


def best_sampler(row: dict, metric: str, columns=SAMPLER_COLUMNS) -> tuple[str, dict] | None:
    """(column, cell) of ``row``'s best sampler by mean for ``metric`` (reconstruction excluded)."""
    cells = [(c, row["cells"][metric][c]) for c in columns if c in row["cells"].get(metric, {})]
    if not cells:
        return None
    key = (lambda item: item[1]["mean"]) if LOWER_IS_BETTER[metric] else (lambda item: -item[1]["mean"])
    return min(cells, key=key)


def wins(table: dict, objective: str, column: str, metric: str) -> dict:
    """Does ``objective``'s ``column`` sampler beat every other objective's best sampler on ``metric``
    by more than one standard deviation (mean ± std intervals apart)?

    Returns {"wins": bool, "margins": {other: (gap, needed)}}: gap = how much better our mean is
    than the other's best mean (positive = better), needed = our std + the other's std."""
    rows = {r["objective"]: r for r in table["rows"]}
    mine = rows[objective]["cells"].get(metric, {}).get(column)
    if mine is None:
        return {"wins": False, "margins": {}}
    margins = {}
    for other, row in rows.items():
        if other == objective:
            continue
        theirs = best_sampler(row, metric)
        if theirs is None:
            continue
        gap = theirs[1]["mean"] - mine["mean"] if LOWER_IS_BETTER[metric] else mine["mean"] - theirs[1]["mean"]
        margins[other] = (gap, (mine["std"] or 0.0) + (theirs[1]["std"] or 0.0), theirs[0])
    return {"wins": bool(margins) and all(g > need for g, need, _ in margins.values()), "margins": margins}
