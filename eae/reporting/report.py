"""The HTML report: image grids, embedded figures, the paper's reference numbers and the Jinja2 page.

Everything here is a function of arrays and dicts; ``pipelines/report.py`` gathers them
(checkpoint, densities, test images, fid.json, git/DVC provenance, experiments) and calls
``report_context`` (one builder per section of the page) then ``render_report``. The page is self-contained: every image is a
``data:`` URI, there are no scripts, external stylesheets or fonts.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable

import numpy as np

from eae.evaluation.results import COLUMNS, LABELS, METRICS, RECONSTRUCTION, Results, parse_results
from eae.images import image_grid, png_data_uri
from eae.reporting.figures import training_curves  # noqa: F401  (re-exported: part of this module's API)
from eae.reporting.paper import PAPER_N_SAMPLES, display_name, paper_row
from eae.sampling.density import ALL_SAMPLERS, SAMPLERS, TWO_STAGE

FID_ROWS = (*SAMPLERS, RECONSTRUCTION)
PIXELATED_BELOW = 48  # images narrower than this are shown upscaled with crisp (nearest-neighbour) pixels
DATASET_NAMES = {
    "cifar10": "CIFAR-10",
    "celeba": "CelebA",
    "mnist": "MNIST",
    "digits": "scikit-learn digits",
    "folder": "image folder",
}


# ---------------------------------------------------------------- images


def figure_data_uri(fig, dpi: int = 100) -> str:
    """A matplotlib figure as an embedded PNG (a pyplot figure is closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def grid_scale(image_width: int, ncol: int, target_px: int = 360, pad: int = 1) -> int:
    """Integer upscaling so a grid of ``ncol`` images is about ``target_px`` wide (at least 1)."""
    return max(1, round(target_px / (ncol * (image_width + pad) + pad)))


def to_float01(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]; float images are returned as float32 unchanged."""
    images = np.asarray(images)
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32, copy=False)


def interleave_rows(first: np.ndarray, second: np.ndarray, ncol: int) -> np.ndarray:
    """Float images ordered so that a grid of ``ncol`` columns shows a row of ``first``, then the
    row of ``second`` at the same positions, and so on (originals above their reconstructions).
    uint8 inputs are scaled to [0, 1]; a last incomplete row is dropped when there is a full one."""
    first, second = to_float01(first), to_float01(second)
    if first.shape != second.shape:
        raise ValueError(f"shapes differ: {first.shape} vs {second.shape}")
    ncol = max(1, min(ncol, len(first)))
    n = len(first) - len(first) % ncol
    rows = []
    for start in range(0, n, ncol):
        rows += [first[start : start + ncol], second[start : start + ncol]]
    return np.concatenate(rows) if rows else first[:0]


def paired_rows_picture(first: np.ndarray, second: np.ndarray, ncol: int, pad: int = 1, gap: int = 4) -> np.ndarray:
    """uint8 picture of ``interleave_rows``: each row of ``first`` directly above the matching row
    of ``second``, the pairs of rows separated by ``gap`` white pixels."""
    images = interleave_rows(first, second, ncol)
    ncol = max(1, min(ncol, len(first)))
    blocks = [image_grid(images[i : i + 2 * ncol], ncol, pad) for i in range(0, len(images), 2 * ncol)]
    if not blocks:
        raise ValueError("no images")
    space = np.full((gap, blocks[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([part for b in blocks for part in (b, space)][:-1], axis=0)


def interpolate_latents(z_start: np.ndarray, z_end: np.ndarray, steps: int = 10) -> np.ndarray:
    """Straight lines in code space: [P, d] endpoints -> [P, steps, d], t = 0, 1/(steps-1), ..., 1
    (the first and last steps are exactly ``z_start`` and ``z_end``)."""
    z_start, z_end = np.asarray(z_start), np.asarray(z_end)
    if z_start.shape != z_end.shape or z_start.ndim != 2:
        raise ValueError(f"endpoints must both be [P, d], got {z_start.shape} and {z_end.shape}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[None, :, None]
    path = (1.0 - t) * z_start[:, None, :] + t * z_end[:, None, :]
    path[:, 0], path[:, -1] = z_start, z_end
    return path.astype(z_start.dtype, copy=False)


def interpolation_images(
    decode: Callable[[np.ndarray], np.ndarray], z_start: np.ndarray, z_end: np.ndarray, steps: int = 10
) -> np.ndarray:
    """Decode the straight lines between code pairs: ``decode`` maps float32 codes [N, d] to images
    [N, C, H, W]; returns [P, steps, C, H, W] (first step = decode(z_start), last = decode(z_end))."""
    path = interpolate_latents(np.asarray(z_start, np.float32), np.asarray(z_end, np.float32), steps)
    p, s, d = path.shape
    images = np.asarray(decode(path.reshape(p * s, d)))
    return images.reshape(p, s, *images.shape[1:])


def interpolation_picture(
    start_images: np.ndarray, path_images: np.ndarray, end_images: np.ndarray, pad: int = 1, gap: int = 4
) -> np.ndarray:
    """One uint8 [H', W', 3] picture, a row per pair: the start image, a ``gap``-pixel white
    space, the S decoded steps [P, S, C, H, W], another gap, the end image."""
    path = to_float01(path_images)
    p, s = path.shape[:2]
    left = image_grid(to_float01(start_images), ncol=1, pad=pad)
    middle = image_grid(path.reshape(p * s, *path.shape[2:]), ncol=s, pad=pad)
    right = image_grid(to_float01(end_images), ncol=1, pad=pad)
    space = np.full((middle.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([left, space, middle, space, right], axis=1)


def param_groups(params: dict) -> list[tuple[str, list[tuple[str, object]]]]:
    """Nested params -> [(section, [(key, value), ...]), ...]; top-level scalars form 'run'."""
    from eae.reporting.experiments import flatten

    top = [(k, v) for k, v in (params or {}).items() if not isinstance(v, dict)]
    groups = [("run", top)] if top else []
    groups += [(k, list(flatten(v).items())) for k, v in (params or {}).items() if isinstance(v, dict)]
    return groups


# ---------------------------------------------------------------- tables


def fid_rows(results: Results | None, objective: str = "eae") -> tuple[str, ...]:
    """The rows of the FID table: the mixture samplers, the flow and the two-stage sampler when the run
    has them (the two-stage sampler also whenever the objective is the two-stage VAE), then reconstruction."""
    extra = tuple(
        s
        for s in ALL_SAMPLERS[len(SAMPLERS) :]
        if (s == TWO_STAGE and objective == "two_stage_vae") or (results and results.value("fd", s) is not None)
    )
    return (*SAMPLERS, *extra, RECONSTRUCTION)


def fid_table(results: Results | None, dataset: str, objective: str = "eae") -> dict:
    """The Fréchet-distance table next to the paper's Table 1 row of ``objective`` for ``dataset``.

    Returns rows (name, value or None, paper or None), missing (names absent from ``results``),
    paper_available, comparable (paper numbers exist and the metric is Inception FID with
    the paper's 10,000 samples), notes (sentences for the reader) and the paper row's name.
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
        notes.append("reports/fid.json is missing: the evaluate stage has not run (dvc repro evaluate).")
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
    }


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
    return {
        "rows": rows,
        "machine": bench.get("machine") or {},
        "generated_at": bench.get("generated_at"),
        "wall_seconds": bench.get("wall_seconds"),
        "met": sum(1 for r in goals if r["met"]),
        "goals": len(goals),
    }


# ---------------------------------------------------------------- the page's sections
# Each builder returns its section's context (None when its inputs are absent) and adds a line to
# ``missing`` saying what is absent and why.


def _grid_uri(images: np.ndarray | None, max_cols: int = 8) -> str | None:
    if images is None or not len(images):
        return None
    ncol = min(max_cols, len(images))
    return png_data_uri(image_grid(images, ncol), grid_scale(images.shape[-1], ncol))


def samples_section(table: dict, samples: dict[str, np.ndarray | None], missing: list[str]) -> list[dict]:
    """A sample grid per sampler row of the FID table, with its Fréchet distance."""
    values = {r["name"]: r["value"] for r in table["rows"]}
    grids = []
    for name in [r["name"] for r in table["rows"] if r["name"] != RECONSTRUCTION]:
        uri = _grid_uri(samples.get(name))
        if uri is None:
            missing.append(f"{name} samples (no {name} density in models/density.npz)")
        grids.append({"name": name, "fid": values.get(name), "uri": uri})
    return grids


def reconstruction_section(
    originals: np.ndarray | None, reconstructions: np.ndarray | None, missing: list[str]
) -> dict | None:
    """Test images, each row above its reconstructions."""
    if originals is None or reconstructions is None or not len(originals):
        missing.append("reconstructions (no test images)")
        return None
    ncol = min(16, len(originals))
    picture = paired_rows_picture(originals, reconstructions, ncol)
    return {
        "uri": png_data_uri(picture, max(1, round(720 / picture.shape[1]))),
        "n": len(originals) - len(originals) % ncol,
    }


def interpolation_section(interpolation: dict | None, missing: list[str]) -> dict | None:
    """Decoded straight lines between pairs of test codes."""
    if interpolation is None:
        missing.append("latent interpolations (no test images)")
        return None
    picture = interpolation_picture(interpolation["start"], interpolation["path"], interpolation["end"])
    return {
        "uri": png_data_uri(picture, max(1, round(720 / picture.shape[1]))),
        "pairs": interpolation["path"].shape[0],
        "steps": interpolation["path"].shape[1],
    }


def latent_section(
    latents: np.ndarray | None, entropy_batch_size: int, entropy_k: int, seed: int, missing: list[str]
) -> dict | None:
    """How Gaussian the test codes are: entropy vs its bound, spectrum, marginals, Q-Q."""
    from eae.evaluation import diagnostics
    from eae.reporting import figures

    if latents is None or len(latents) <= entropy_k + 1:
        missing.append("latent diagnostics (no test codes)")
        return None
    latents = np.asarray(latents, np.float64)
    ent = diagnostics.entropy_vs_bound(latents, entropy_batch_size, entropy_k, seed)
    ev = diagnostics.covariance_eigenvalues(latents)
    stats = diagnostics.marginal_stats(latents)
    return {
        "n": len(latents),
        "d": latents.shape[1],
        "shown_dims": min(latents.shape[1], figures.MAX_DIMS),
        "entropy": ent,
        "eigen_min": float(ev.min()),
        "eigen_max": float(ev.max()),
        "condition": float(ev.max() / ev.min()) if ev.min() > 0 else float("inf"),
        "worst_mean": float(np.abs(stats["mean"]).max()),
        "std_min": float(stats["std"].min()),
        "std_max": float(stats["std"].max()),
        "skew_max": float(np.abs(stats["skew"]).max()),
        "kurtosis_max": float(np.abs(stats["kurtosis"]).max()),
        "histograms": figure_data_uri(figures.marginal_histograms(latents)),
        "qq": figure_data_uri(figures.qq_plot(latents)),
        "spectrum": figure_data_uri(figures.eigenvalue_spectrum(ev)),
        "entropy_plot": figure_data_uri(figures.entropy_comparison(ent)),
    }


def gmm_section(gmm_weights: np.ndarray | None, missing: list[str]) -> dict | None:
    """The GMM's component weights and their effective number."""
    from eae.reporting import figures

    if gmm_weights is None or not len(gmm_weights):
        missing.append("GMM component weights (no gmm density in models/density.npz)")
        return None
    w = np.asarray(gmm_weights, np.float64)
    return {
        "k": len(w),
        "max": float(w.max()),
        "min": float(w.min()),
        "effective": float(1.0 / np.sum(w**2)),
        "plot": figure_data_uri(figures.mixture_weights(w)),
    }


def curves_section(history: dict | None, latent_dim: int | None, missing: list[str]) -> str | None:
    """The per-epoch training curves, with N(0, I)'s entropy as the entropy curve's reference."""
    from eae.evaluation import diagnostics

    if not history or not any(history.get(k) for k in history):
        missing.append("training curves (no per-epoch history in the checkpoint)")
        return None
    reference = {"N(0, I) entropy": diagnostics.isotropic_entropy(int(latent_dim))} if latent_dim else None
    return figure_data_uri(training_curves(history, reference))


def generator_section(
    generator: dict | None, results: Results | None, objective: str, missing: list[str]
) -> dict | None:
    """The exported ONNX generator: its card, samples, parity with torch and whether the card's
    Fréchet distances are this evaluation's."""
    if generator is None or not generator.get("card"):
        missing.append("ONNX generator: " + ((generator or {}).get("error") or "models/generator.onnx and its card"))
        return None
    card = generator["card"]
    carded = parse_results(card.get("evaluation") or {})
    stale = [
        k
        for k in fid_rows(results, objective)
        if results is not None
        and (now := results.value("fd", k)) is not None
        and (then := carded.value("fd", k)) is not None
        and not math.isclose(now, then, rel_tol=1e-9)
    ]
    return {"card": card, "parity": generator.get("parity"), "stale": stale, "uri": _grid_uri(generator.get("images"))}


def experiments_section(
    experiments: list[dict] | None, error: str | None, dataset: str, results: Results | None
) -> dict:
    """The DVC experiments table and, over several entropy weights, FD against the weight."""
    from eae.reporting import experiments as exps
    from eae.reporting import figures

    exp = {
        "records": [],
        "columns": [],
        "plot": None,
        "error": error,
        "n_betas": 0,
        "show_state": False,
        "fid_columns": list(FID_ROWS),
    }
    if not experiments:
        exp["error"] = error or "no experiments"
        return exp
    points = exps.fid_points(experiments, dataset, results.feature_extractor if results else None)
    betas = sorted({p["entropy_weight"] for p in points})
    exp.update(
        records=experiments,
        columns=exps.varying_params(experiments),
        n_betas=len(betas),
        best_gmm=min((r["fid"]["gmm"] for r in experiments if "gmm" in r["fid"]), default=None),
        fid_columns=[c for c in COLUMNS if any(c in r["fid"] for r in experiments)],
        show_state=any(r.get("status") or r.get("error") for r in experiments),
        plot=figure_data_uri(figures.fid_vs_entropy_weight(points)) if len(betas) > 1 else None,
    )
    return exp


def report_context(
    *,
    run: dict,
    fid: dict | None,
    samples: dict[str, np.ndarray | None],
    originals: np.ndarray | None = None,
    reconstructions: np.ndarray | None = None,
    interpolation: dict | None = None,
    latents: np.ndarray | None = None,
    gmm_weights: np.ndarray | None = None,
    history: dict | None = None,
    train_metrics: dict | None = None,
    generator: dict | None = None,
    experiments: list[dict] | None = None,
    experiments_error: str | None = None,
    entropy_batch_size: int = 100,
    entropy_k: int = 1,
    seed: int = 0,
    objective: dict | None = None,
    table1: dict | None = None,
    bench: dict | None = None,
    fid_problem: str | None = None,
) -> dict:
    """The template context: one builder per section of the page (figures rendered and embedded).

    run: dataset, params (nested, as in the checkpoint), git {rev, dirty, changes, more, outputs},
        data {md5, content_hash, source, counts, image_shape}, durations [{stage, seconds or None,
        source}], generated_at.
    fid: the evaluation record reports/fid.json (``eae.evaluation.results``), or None when missing.
    samples: sampler -> generated images [N, C, H, W] (None: sampler unavailable).
    originals, reconstructions: test images and their reconstructions [N, C, H, W].
    interpolation: {'start': [P,C,H,W], 'end': [P,C,H,W], 'path': [P,S,C,H,W]} (decoded straight lines).
    latents: test-split codes [N, d] (eval mode). gmm_weights: [K].
    history: per-epoch lists (loss, recon, entropy, lr). train_metrics: final scalars.
    generator: {card, images [N,C,H,W], parity (max abs pixel difference vs torch) or None,
        error} or None when the ONNX generator is missing.
    experiments: records of ``eae.reporting.experiments.parse_exp_show`` (None: not available, see
        ``experiments_error``).
    objective: the checkpoint's {"name", "weights"} (default: the EAE).
    table1: reports/table1.json (``pipelines.orchestration.table1``), or None.
    bench: reports/bench.json (``make bench``), or None.
    fid_problem: why ``fid`` does not belong to this run's checkpoint or density
        (``Results.provenance_problem``): its scores are then refused (shown nowhere) and the page says why.
    """
    missing: list[str] = []
    dataset = run.get("dataset") or "unknown"
    params = run.get("params") or {}
    objective = objective or {"name": "eae", "weights": {"entropy_weight": params.get("entropy_weight")}}
    results = parse_results(fid) if fid is not None and fid_problem is None else None
    table = fid_table(results, dataset, objective["name"])
    if fid_problem is not None:
        stale = f"reports/fid.json is not this run's: {fid_problem}; its scores are not shown (dvc repro evaluate)"
        missing.append(stale)
        table["notes"] = [stale + "." if n.startswith("reports/fid.json is missing") else n for n in table["notes"]]
    elif results is None:
        missing.append("reports/fid.json (Fréchet distances): run the evaluate stage")
    elif table["missing"]:
        missing.append("reports/fid.json has no value for " + ", ".join(table["missing"]))
    latent_dim = (latents.shape[1] if latents is not None else None) or (params.get("model") or {}).get("latent_dim")
    grids = samples_section(table, samples, missing)
    metrics = dict(train_metrics or {})
    shapes = [a.shape[-1] for a in (*samples.values(), originals) if a is not None and np.ndim(a) == 4]
    return {
        "pixel": bool(shapes) and min(shapes) < PIXELATED_BELOW,
        "run": run,
        "dataset": dataset,
        "dataset_name": table["dataset_name"],
        "entropy_weight": params.get("entropy_weight"),
        "seed": params.get("seed"),
        "objective": objective,
        "system": display_name(objective["name"]),
        "latent_dim": (params.get("model") or {}).get("latent_dim"),
        "epochs": metrics.get("epochs"),
        "param_groups": param_groups(params),
        "protocol": results.protocol if results is not None else None,
        "fid_table": table,
        "samplers": [g["name"] for g in grids],
        "grids": grids,
        "quality": quality_rows(results, tuple(r["name"] for r in table["rows"])),
        "table1": table1_context(table1),
        "bench": bench_context(bench),
        "recon": reconstruction_section(originals, reconstructions, missing),
        "interp": interpolation_section(interpolation, missing),
        "latent": latent_section(latents, entropy_batch_size, entropy_k, seed, missing),
        "gmm": gmm_section(gmm_weights, missing),
        "curves": curves_section(history, latent_dim, missing),
        "train_metrics": metrics,
        "generator": generator_section(generator, results, objective["name"], missing),
        "experiments": experiments_section(experiments, experiments_error, dataset, results),
        "missing": missing,
    }


def render_report(context: dict) -> str:
    """Render eae/reporting/templates/report.html.j2 (autoescaped) with ``context``."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("eae.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    return env.get_template("report.html.j2").render(**context)


def _num(value, digits: int = 4) -> str:
    """Format a number for tables with ``digits`` significant digits (0.05, 1e-06, 10.69); None -> '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"
