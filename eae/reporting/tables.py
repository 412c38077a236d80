"""The report's tables: Fréchet distances next to the paper's Table 1 row, every metric per sampler, the
multi-seed Table 1 (reports/table1.json), and the performance and scale studies (reports/bench.json)."""

from __future__ import annotations

from eae.evaluation.claims import UNMEASURED, comparison_text
from eae.evaluation.results import LABELS, METRICS, RECONSTRUCTION, Results
from eae.reporting.paper import PAPER_N_SAMPLES, display_name, paper_row
from eae.reporting.pictures import figure_data_uri
from eae.sampling import ALL_SAMPLERS, SAMPLERS, TWO_STAGE

DATASET_NAMES = {
    "cifar10": "CIFAR-10",
    "celeba": "CelebA",
    "mnist": "MNIST",
    "digits": "scikit-learn digits",
    "folder": "image folder",
}


def fid_rows(results: Results | None, objective: str = "eae") -> tuple[str, ...]:
    """The rows of the FID table: the mixture samplers, the flow and the two-stage sampler when the run
    has them (the two-stage sampler also whenever the objective is the two-stage VAE), then reconstruction."""
    extra = tuple(
        s
        for s in ALL_SAMPLERS[len(SAMPLERS) :]
        if (s == TWO_STAGE and objective == "two_stage_vae") or (results and results.value("fd", s) is not None)
    )
    return (*SAMPLERS, *extra, RECONSTRUCTION)


def metric_label(extractor: str | None) -> tuple[str, str | None]:
    """How the report names a Fréchet distance in the features of ``extractor``: ("FID", None) for Inception
    features (that is what FID means), ("FD", "<extractor> features") for any other, ("FD", None) when the
    extractor is not known."""
    if extractor and "inception" in extractor.lower():
        return "FID", None
    return "FD", f"{extractor} features" if extractor else None


def fid_table(
    results: Results | None, dataset: str, objective: str = "eae", evaluate_command: str | None = None
) -> dict:
    """The Fréchet-distance table next to the paper's Table 1 row of ``objective`` for ``dataset``.

    Returns rows (name, value or None, paper or None), missing (names absent from ``results``),
    paper_available, comparable (paper numbers exist and the metric is Inception FID with
    the paper's 10,000 samples), notes (sentences for the reader), the paper row's name, and the
    metric's label (``metric_label``: label, features). ``evaluate_command``: what writes reports/fid.json,
    named in the note when it is missing.
    """
    paper = paper_row(objective, dataset)
    protocol = results.protocol if results else {}
    extractor = str(protocol.get("feature_extractor") or "unknown")
    inception = "inception" in extractor.lower()
    rows, missing = [], []
    for name in fid_rows(results, objective):
        value = results.value("fd", name) if results else None
        if value is None:
            missing.append(name)
        reference = (paper or {}).get(name)
        rows.append(
            {
                "name": name,
                "value": value,
                "paper": reference,
                "delta": value - reference if value is not None and reference is not None else None,
            }
        )
    notes = []
    pretty = DATASET_NAMES.get(dataset, dataset)
    if results is None:
        notes.append(f"reports/fid.json is missing: this run has not been evaluated{_command(evaluate_command)}.")
    if paper is None and results is None:
        notes.append(f"The paper reports no FID for {pretty}.")
    elif paper is None:
        notes.append(
            f"The paper reports no FID for {pretty}. These distances use {extractor} features "
            f"({protocol.get('metric_name', 'metric not recorded')}), so they compare runs of this pipeline "
            "on the same data only; they are not Inception FIDs."
        )
    elif results is not None and not inception:
        notes.append(
            f"Paper numbers are Inception FIDs; this run measured the distance in {extractor} "
            "features, so the two columns are not comparable."
        )
    dims = protocol.get("inception_dims")
    if inception and dims not in (None, 2048):
        notes.append(
            f"This run used {dims}-dimensional Inception features; FID (and the paper) uses the "
            "2048-dimensional pool3 features, so the values are not comparable with Table 1."
        )
    n_samples = protocol.get("n_generated")
    if paper is not None and results is not None and n_samples is not None and n_samples != PAPER_N_SAMPLES:
        notes.append(
            f"The paper uses {PAPER_N_SAMPLES:,} generated images; this run used {n_samples:,}, "
            "and FID is biased upwards for fewer samples."
        )
    if results is not None and missing:
        notes.append("Missing from reports/fid.json: " + ", ".join(missing) + ".")
    return {
        "rows": rows,
        "missing": missing,
        "paper_available": paper is not None,
        "comparable": paper is not None and inception and n_samples in (None, PAPER_N_SAMPLES) and dims in (None, 2048),
        "notes": notes,
        "dataset_name": pretty,
        "system": display_name(objective),
        "label": metric_label(protocol.get("feature_extractor"))[0],
        "features": metric_label(protocol.get("feature_extractor"))[1],
    }


def _command(command: str | None) -> str:
    return f" ({command})" if command else ""


def quality_rows(results: Results | None, rows: tuple[str, ...]) -> list[dict]:
    """Per sampler (and reconstruction): every metric of ``results`` (None where absent: an older
    record has the Fréchet distances only)."""
    return [{"name": name, **{m: results.value(m, name) if results else None for m in METRICS}} for name in rows]


def table1_context(table: dict | None, this_run: dict | None = None) -> dict | None:
    """The report's Table 1 section from reports/table1.json (None when there is none): for each
    metric a grid objective x column of "mean ± std", the best mean per column marked, the paper's
    FIDs for the Fréchet distance, an error-bar chart, and whether the EAE wins each column."""
    if not table or not table.get("rows"):
        return None
    from eae.reporting import figures

    grids = []
    for metric in table.get("metrics", []):
        if not any(row["cells"].get(metric) for row in table["rows"]):
            continue
        lines = []
        for row in table["rows"]:
            cells = []
            for column in table["columns"]:
                cell = row["cells"].get(metric, {}).get(column)
                paper = ((table.get("paper") or {}).get(row["objective"]) or {}).get(column) if metric == "fd" else None
                cells.append(
                    {
                        "mean": cell["mean"] if cell else None,
                        "std": cell["std"] if cell else None,
                        "n": cell["n"] if cell else 0,
                        "paper": paper,
                        "best": table["best"].get(metric, {}).get(column) == row["objective"],
                    }
                )
            lines.append({"name": row["name"], "objective": row["objective"], "cells": cells})
        lower = bool(METRICS.get(metric))
        grids.append(
            {
                "metric": metric,
                "label": LABELS.get(metric, metric),
                "lower": lower,
                "rows": lines,
                "plot": figure_data_uri(
                    figures.table1_errorbars(
                        table, metric, f"{LABELS.get(metric, metric)} ({'lower' if lower else 'higher'} is better)"
                    )
                ),
            }
        )
    return {
        "grids": grids,
        "columns": table["columns"],
        "seeds": table.get("seeds", []),
        "prefix": table.get("prefix", "t1"),
        "dataset": table.get("dataset"),
        "overrides": table.get("overrides") or [],
        "failed": table.get("failed") or [],
        "generated_at": table.get("generated_at"),
        "wall_seconds": table.get("wall_seconds"),
        "eae_wins": table.get("eae_wins"),
        "paper": bool(table.get("paper")),
        "metric_name": table.get("metric"),
        "feature_extractor": table.get("feature_extractor"),
    }


def bench_context(bench: dict | None) -> dict | None:
    """The report's Performance section from reports/bench.json (``make bench``): every measured
    ratio with its goal, whether it is met, its spread over rounds, and the machine."""
    if not bench or not bench.get("benchmarks"):
        return None
    rows = []
    for result in bench["benchmarks"]:
        if result.get("error"):
            rows.append(
                {
                    "benchmark": result["benchmark"],
                    "name": f"{result['benchmark']}: {result['error']}",
                    "value": None,
                    "unit": "",
                    "goal": None,
                    "met": None,
                    "spread": None,
                }
            )
        for r in result.get("rows", []):
            rows.append({"benchmark": result["benchmark"], **r})
    goals = [r for r in rows if r.get("met") is not None]
    scale = next((r for r in bench["benchmarks"] if r.get("benchmark") == "scale" and r.get("rows")), None)
    return {
        "rows": rows,
        "machine": bench.get("machine") or {},
        "generated_at": bench.get("generated_at"),
        "wall_seconds": bench.get("wall_seconds"),
        "met": sum(1 for r in goals if r["met"]),
        "goals": len(goals),
        "scale": scale_context(scale),
    }


def scale_context(scale: dict | None) -> dict | None:
    """The scale study of ``benchmarks/scale.py`` (its entry in bench.json): a stage x size table of
    seconds and peak memory, each stage's growth exponent and flags, and the log-log plot."""
    from eae.reporting import figures

    if not scale:
        return None
    stages = []
    for r in scale["rows"]:
        d = r.get("details") or {}
        if not d.get("sizes"):
            continue
        stages.append(
            {
                "name": r["name"].removeprefix("scale: ").split(", time", 1)[0],
                "cells": [{"seconds": s, "peak_mb": m} for s, m in zip(d["seconds"], d["peak_mb"])],
                "sizes": d["sizes"],
                "exponent": d.get("time_exponent"),
                "flags": d.get("flags") or [],
                "notes": d.get("notes") or [],
            }
        )
    if not stages:
        return None
    series = {s["name"]: (s["sizes"], [c["seconds"] for c in s["cells"]]) for s in stages}
    loads = [v["load_1min"][0] for r in scale["rows"] for v in (r.get("details") or {}).get("per_size", {}).values()]
    return {
        "sizes": stages[0]["sizes"],
        "stages": stages,
        "plot": figure_data_uri(figures.scale_growth(series)),
        "profile": scale.get("profile"),
        "settings": scale.get("settings") or {},
        "machine": scale.get("machine") or {},
        "generated_at": scale.get("generated_at"),
        "seconds": scale.get("seconds"),
        "max_load": max(loads) if loads else None,
    }


def claims_context(record: dict | None) -> dict | None:
    """The report's Claims section from reports/claims.json (``pipelines.claims``; None when there is none):
    a row per claim with its verdict on each dataset, the seeds that decided it and each comparison's FDs."""
    if not record or not record.get("claims"):
        return None
    datasets = list(record.get("datasets") or [])
    rows = []
    for claim in record["claims"]:
        verdicts = []
        for d in datasets:
            judged = claim["datasets"].get(d) or {"verdict": UNMEASURED, "comparisons": []}
            verdicts.append(
                {
                    "verdict": judged["verdict"],
                    "seeds": judged.get("seeds"),
                    "figures": [
                        "FD " + comparison_text(c) for c in judged["comparisons"] if c["verdict"] != UNMEASURED
                    ],
                    "not_measured": judged.get("not_measured") or [],
                }
            )
        rows.append({k: claim[k] for k in ("id", "statement", "section", "test")} | {"verdicts": verdicts})
    return {
        "datasets": datasets,
        "rows": rows,
        "rules": record.get("rules") or {},
        "note": record.get("note"),
        "generated_at": record.get("generated_at"),
    }
