"""The HTML report: image grids, embedded figures, the paper's reference numbers and the Jinja2 page.

Everything here is a function of arrays and dicts; ``pipelines/report.py`` gathers them
(checkpoint, densities, test images, fid.json, git/DVC provenance, experiments) and calls
``report_context`` then ``render_report``. The page is self-contained: every image is a
``data:`` URI, there are no scripts, external stylesheets or fonts.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Callable

import numpy as np

from eae.density import ALL_SAMPLERS, SAMPLERS
from eae.figures import training_curves  # noqa: F401  (re-exported: part of this module's API)
from eae.images import image_grid, png_data_uri
from eae.paper import PAPER_N_SAMPLES, display_name, paper_row

FID_ROWS = (*SAMPLERS, "reconstruction")
PIXELATED_BELOW = 48  # images narrower than this are shown upscaled with crisp (nearest-neighbour) pixels
DATASET_NAMES = {"cifar10": "CIFAR-10", "celeba": "CelebA", "mnist": "MNIST", "digits": "scikit-learn digits",
                 "folder": "image folder"}


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
        rows += [first[start:start + ncol], second[start:start + ncol]]
    return np.concatenate(rows) if rows else first[:0]


def paired_rows_picture(first: np.ndarray, second: np.ndarray, ncol: int, pad: int = 1, gap: int = 4) -> np.ndarray:
    """uint8 picture of ``interleave_rows``: each row of ``first`` directly above the matching row
    of ``second``, the pairs of rows separated by ``gap`` white pixels."""
    images = interleave_rows(first, second, ncol)
    ncol = max(1, min(ncol, len(first)))
    blocks = [image_grid(images[i:i + 2 * ncol], ncol, pad) for i in range(0, len(images), 2 * ncol)]
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


def interpolation_images(decode: Callable[[np.ndarray], np.ndarray], z_start: np.ndarray, z_end: np.ndarray,
                         steps: int = 10) -> np.ndarray:
    """Decode the straight lines between code pairs: ``decode`` maps float32 codes [N, d] to images
    [N, C, H, W]; returns [P, steps, C, H, W] (first step = decode(z_start), last = decode(z_end))."""
    path = interpolate_latents(np.asarray(z_start, np.float32), np.asarray(z_end, np.float32), steps)
    p, s, d = path.shape
    images = np.asarray(decode(path.reshape(p * s, d)))
    return images.reshape(p, s, *images.shape[1:])


def interpolation_picture(start_images: np.ndarray, path_images: np.ndarray, end_images: np.ndarray,
                          pad: int = 1, gap: int = 4) -> np.ndarray:
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
    from eae.experiments import flatten

    top = [(k, v) for k, v in (params or {}).items() if not isinstance(v, dict)]
    groups = [("run", top)] if top else []
    groups += [(k, list(flatten(v).items())) for k, v in (params or {}).items() if isinstance(v, dict)]
    return groups


# ---------------------------------------------------------------- tables

def fid_rows(fid: dict | None, objective: str = "eae") -> tuple[str, ...]:
    """The rows of the FID table: the mixture samplers, the two-stage sampler when the run has one
    (or its objective is the two-stage VAE), then reconstruction."""
    extra = (ALL_SAMPLERS[len(SAMPLERS):] if objective == "two_stage_vae" or any(
        k in (fid or {}) for k in ALL_SAMPLERS[len(SAMPLERS):]) else ())
    return (*SAMPLERS, *extra, "reconstruction")


def fid_table(fid: dict | None, dataset: str, objective: str = "eae") -> dict:
    """The Fréchet-distance table next to the paper's Table 1 row of ``objective`` for ``dataset``.

    Returns rows (name, value or None, paper or None), missing (names absent from ``fid``),
    paper_available, comparable (paper numbers exist and the metric is Inception FID with
    the paper's 10,000 samples), notes (sentences for the reader) and the paper row's name.
    """
    paper = paper_row(objective, dataset)
    fid = fid or {}
    extractor = str(fid.get("feature_extractor") or "unknown")
    inception = "inception" in extractor.lower()
    rows, missing = [], []
    for name in fid_rows(fid, objective):
        value = fid.get(name)
        value = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
        if value is None:
            missing.append(name)
        reference = (paper or {}).get(name)
        rows.append({"name": name, "value": value, "paper": reference,
                     "delta": value - reference if value is not None and reference is not None else None})
    notes = []
    pretty = DATASET_NAMES.get(dataset, dataset)
    if not fid:
        notes.append("reports/fid.json is missing: the evaluate stage has not run (dvc repro evaluate).")
    if paper is None and not fid:
        notes.append(f"The paper reports no FID for {pretty}.")
    elif paper is None:
        notes.append(f"The paper reports no FID for {pretty}. These distances use {extractor} features "
                     f"({fid.get('metric', 'metric not recorded')}), so they compare runs of this pipeline "
                     "on the same data only; they are not Inception FIDs.")
    elif fid and not inception:
        notes.append(f"Paper numbers are Inception FIDs; this run measured the distance in {extractor} "
                     "features, so the two columns are not comparable.")
    dims = fid.get("inception_dims")
    if inception and dims not in (None, 2048):
        notes.append(f"This run used {dims}-dimensional Inception features; FID (and the paper) uses the "
                     "2048-dimensional pool3 features, so the values are not comparable with Table 1.")
    n_samples = fid.get("n_samples")
    if paper is not None and fid and n_samples is not None and n_samples != PAPER_N_SAMPLES:
        notes.append(f"The paper uses {PAPER_N_SAMPLES:,} generated images; this run used {n_samples:,}, "
                     "and FID is biased upwards for fewer samples.")
    if fid and missing:
        notes.append("Missing from reports/fid.json: " + ", ".join(missing) + ".")
    return {"rows": rows, "missing": missing, "paper_available": paper is not None,
            "comparable": paper is not None and inception and n_samples in (None, PAPER_N_SAMPLES)
            and dims in (None, 2048),
            "notes": notes, "dataset_name": pretty, "system": display_name(objective)}


METRIC_LABELS = {"fd": "Fréchet distance", "kid": "KID", "precision": "precision", "recall": "recall"}


def quality_rows(fid: dict | None, rows: tuple[str, ...]) -> list[dict]:
    """Per sampler (and reconstruction): FD, KID mean ± std, precision, recall and class entropy from
    fid.json (None where absent: an older fid.json has the Fréchet distances only)."""
    fid = fid or {}

    def get(section: str, name: str):
        value = (fid.get(section) or {}).get(name)
        return value if isinstance(value, (int, float, dict)) else None

    out = []
    for name in rows:
        kid = get("kid", name)
        out.append({"name": name, "fd": fid.get(name) if isinstance(fid.get(name), (int, float)) else None,
                    "kid": kid.get("mean") if isinstance(kid, dict) else None,
                    "kid_std": kid.get("std") if isinstance(kid, dict) else None,
                    "precision": get("precision", name), "recall": get("recall", name),
                    "class_entropy": get("class_entropy", name)})
    return out


def table1_context(table: dict | None, this_run: dict | None = None) -> dict | None:
    """The report's Table 1 section from reports/table1.json (None when there is none): for each
    metric a grid objective x column of "mean ± std", the best mean per column marked, the paper's
    FIDs for the Fréchet distance, an error-bar chart, and whether the EAE wins each column."""
    if not table or not table.get("rows"):
        return None
    from eae import figures

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
                cells.append({"mean": cell["mean"] if cell else None, "std": cell["std"] if cell else None,
                              "n": cell["n"] if cell else 0, "paper": paper,
                              "best": table["best"].get(metric, {}).get(column) == row["objective"]})
            lines.append({"name": row["name"], "objective": row["objective"], "cells": cells})
        lower = metric in ("fd", "kid")
        grids.append({"metric": metric, "label": METRIC_LABELS.get(metric, metric), "lower": lower, "rows": lines,
                      "plot": figure_data_uri(figures.table1_errorbars(
                          table, metric, f"{METRIC_LABELS.get(metric, metric)} ({'lower' if lower else 'higher'} is better)"))})
    return {"grids": grids, "columns": table["columns"], "seeds": table.get("seeds", []),
            "prefix": table.get("prefix", "t1"),
            "dataset": table.get("dataset"), "overrides": table.get("overrides") or [],
            "failed": table.get("failed") or [], "generated_at": table.get("generated_at"),
            "wall_seconds": table.get("wall_seconds"), "eae_wins": table.get("eae_wins"),
            "paper": bool(table.get("paper")), "metric_name": table.get("metric"),
            "feature_extractor": table.get("feature_extractor")}


def bench_context(bench: dict | None) -> dict | None:
    """The report's Performance section from reports/bench.json (``make bench``): every measured
    ratio with its goal, whether it is met, its spread over rounds, and the machine."""
    if not bench or not bench.get("benchmarks"):
        return None
    rows = []
    for result in bench["benchmarks"]:
        if result.get("error"):
            rows.append({"benchmark": result["benchmark"], "name": f"{result['benchmark']}: {result['error']}",
                         "value": None, "unit": "", "goal": None, "met": None, "spread": None})
        for r in result.get("rows", []):
            rows.append({"benchmark": result["benchmark"], **r})
    goals = [r for r in rows if r.get("met") is not None]
    return {"rows": rows, "machine": bench.get("machine") or {}, "generated_at": bench.get("generated_at"),
            "wall_seconds": bench.get("wall_seconds"), "met": sum(1 for r in goals if r["met"]), "goals": len(goals)}


# ---------------------------------------------------------------- the page

def report_context(*, run: dict, fid: dict | None, samples: dict[str, np.ndarray | None],
                   originals: np.ndarray | None = None, reconstructions: np.ndarray | None = None,
                   interpolation: dict | None = None, latents: np.ndarray | None = None,
                   gmm_weights: np.ndarray | None = None, history: dict | None = None,
                   train_metrics: dict | None = None, generator: dict | None = None,
                   experiments: list[dict] | None = None, experiments_error: str | None = None,
                   entropy_batch_size: int = 100, entropy_k: int = 1, seed: int = 0,
                   objective: dict | None = None, table1: dict | None = None, bench: dict | None = None) -> dict:
    """Build the template context (figures rendered and embedded) from plain inputs.

    run: dataset, params (nested, as in the checkpoint), git {rev, dirty, changes, more, outputs},
        data {md5, content_hash, source, counts, image_shape}, durations [{stage, seconds or None,
        source}], generated_at.
    fid: reports/fid.json, or None when missing.
    samples: sampler -> generated images [N, C, H, W] (None: sampler unavailable).
    originals, reconstructions: test images and their reconstructions [N, C, H, W].
    interpolation: {'start': [P,C,H,W], 'end': [P,C,H,W], 'path': [P,S,C,H,W]} (decoded straight lines).
    latents: test-split codes [N, d] (eval mode). gmm_weights: [K].
    history: per-epoch lists (loss, recon, entropy, lr). train_metrics: final scalars.
    generator: {card, images [N,C,H,W], parity (max abs pixel difference vs torch) or None,
        error} or None when the ONNX generator is missing.
    experiments: records of ``eae.experiments.parse_exp_show`` (None: not available, see
        ``experiments_error``).
    objective: the checkpoint's {"name", "weights"} (default: the EAE).
    table1: reports/table1.json (``pipelines.table1``), or None.
    bench: reports/bench.json (``make bench``), or None.
    """
    from eae import diagnostics, experiments as exps, figures

    missing: list[str] = []
    dataset = run.get("dataset") or "unknown"
    params = run.get("params") or {}
    objective = objective or {"name": "eae", "weights": {"entropy_weight": params.get("entropy_weight")}}
    table = fid_table(fid, dataset, objective["name"])
    if fid is None:
        missing.append("reports/fid.json (Fréchet distances): run the evaluate stage")
    elif table["missing"]:
        missing.append("reports/fid.json has no value for " + ", ".join(table["missing"]))

    values = {r["name"]: r["value"] for r in table["rows"]}
    grids = []
    for name in [r["name"] for r in table["rows"] if r["name"] != "reconstruction"]:
        images = samples.get(name)
        entry = {"name": name, "fid": values.get(name), "uri": None}
        if images is not None and len(images):
            ncol = min(8, len(images))
            entry["uri"] = png_data_uri(image_grid(images, ncol), grid_scale(images.shape[-1], ncol))
        else:
            missing.append(f"{name} samples (no {name} density in models/density.npz)")
        grids.append(entry)

    recon = None
    if originals is not None and reconstructions is not None and len(originals):
        ncol = min(16, len(originals))
        picture = paired_rows_picture(originals, reconstructions, ncol)
        recon = {"uri": png_data_uri(picture, max(1, round(720 / picture.shape[1]))),
                 "n": len(originals) - len(originals) % ncol}
    else:
        missing.append("reconstructions (no test images)")

    interp = None
    if interpolation is not None:
        picture = interpolation_picture(interpolation["start"], interpolation["path"], interpolation["end"])
        scale = max(1, round(720 / picture.shape[1]))
        interp = {"uri": png_data_uri(picture, scale),
                  "pairs": interpolation["path"].shape[0], "steps": interpolation["path"].shape[1]}
    else:
        missing.append("latent interpolations (no test images)")

    latent = None
    if latents is not None and len(latents) > entropy_k + 1:
        latents = np.asarray(latents, np.float64)
        ent = diagnostics.entropy_vs_bound(latents, entropy_batch_size, entropy_k, seed)
        ev = diagnostics.covariance_eigenvalues(latents)
        stats = diagnostics.marginal_stats(latents)
        latent = {
            "n": len(latents), "d": latents.shape[1], "shown_dims": min(latents.shape[1], figures.MAX_DIMS),
            "entropy": ent,
            "eigen_min": float(ev.min()), "eigen_max": float(ev.max()),
            "condition": float(ev.max() / ev.min()) if ev.min() > 0 else float("inf"),
            "worst_mean": float(np.abs(stats["mean"]).max()),
            "std_min": float(stats["std"].min()), "std_max": float(stats["std"].max()),
            "skew_max": float(np.abs(stats["skew"]).max()), "kurtosis_max": float(np.abs(stats["kurtosis"]).max()),
            "histograms": figure_data_uri(figures.marginal_histograms(latents)),
            "qq": figure_data_uri(figures.qq_plot(latents)),
            "spectrum": figure_data_uri(figures.eigenvalue_spectrum(ev)),
            "entropy_plot": figure_data_uri(figures.entropy_comparison(ent)),
        }
    else:
        missing.append("latent diagnostics (no test codes)")

    gmm = None
    if gmm_weights is not None and len(gmm_weights):
        w = np.asarray(gmm_weights, np.float64)
        gmm = {"k": len(w), "max": float(w.max()), "min": float(w.min()),
               "effective": float(1.0 / np.sum(w ** 2)),
               "plot": figure_data_uri(figures.mixture_weights(w))}
    else:
        missing.append("GMM component weights (no gmm density in models/density.npz)")

    curves = None
    if history and any(history.get(k) for k in history):
        d = (latents.shape[1] if latents is not None else None) or (params.get("model") or {}).get("latent_dim")
        reference = {"N(0, I) entropy": diagnostics.isotropic_entropy(int(d))} if d else None
        curves = figure_data_uri(training_curves(history, reference))
    else:
        missing.append("training curves (no per-epoch history in the checkpoint)")

    gen = None
    if generator is not None and generator.get("card"):
        card = generator["card"]
        images = generator.get("images")
        card_fid = card.get("evaluation") or {}
        stale = [k for k in fid_rows(fid, objective["name"]) if fid and isinstance(fid.get(k), (int, float))
                 and isinstance(card_fid.get(k), (int, float)) and not math.isclose(fid[k], card_fid[k], rel_tol=1e-9)]
        uri = None
        if images is not None and len(images):
            ncol = min(8, len(images))
            uri = png_data_uri(image_grid(images, ncol), grid_scale(images.shape[-1], ncol))
        gen = {"card": card, "parity": generator.get("parity"), "stale": stale, "uri": uri}
    else:
        missing.append("ONNX generator: " + ((generator or {}).get("error") or "models/generator.onnx and its card"))

    exp = {"records": [], "columns": [], "plot": None, "error": experiments_error, "n_betas": 0, "show_state": False,
           "fid_columns": list(FID_ROWS)}
    if experiments:
        columns = exps.varying_params(experiments)
        points = exps.fid_points(experiments, dataset, (fid or {}).get("feature_extractor"))
        betas = sorted({p["entropy_weight"] for p in points})
        best = min((r["fid"]["gmm"] for r in experiments if "gmm" in r["fid"]), default=None)
        exp.update(records=experiments, columns=columns, n_betas=len(betas), best_gmm=best,
                   fid_columns=[c for c in ALL_SAMPLERS + ("reconstruction",) if any(c in r["fid"] for r in experiments)],
                   show_state=any(r.get("status") or r.get("error") for r in experiments),
                   plot=figure_data_uri(figures.fid_vs_entropy_weight(points)) if len(betas) > 1 else None)
    elif experiments_error is None:
        exp["error"] = "no experiments"

    metrics = dict(train_metrics or {})
    shapes = [a.shape[-1] for a in (*samples.values(), originals) if a is not None and np.ndim(a) == 4]
    return {
        "pixel": bool(shapes) and min(shapes) < PIXELATED_BELOW,
        "run": run, "dataset": dataset, "dataset_name": table["dataset_name"],
        "entropy_weight": params.get("entropy_weight"), "seed": params.get("seed"),
        "objective": objective, "system": display_name(objective["name"]),
        "latent_dim": (params.get("model") or {}).get("latent_dim"),
        "epochs": metrics.get("epochs"),
        "param_groups": param_groups(params),
        "fid": fid, "fid_table": table, "samplers": [g["name"] for g in grids], "grids": grids,
        "quality": quality_rows(fid, tuple(r["name"] for r in table["rows"])),
        "table1": table1_context(table1),
        "bench": bench_context(bench),
        "recon": recon, "interp": interp, "latent": latent, "gmm": gmm,
        "curves": curves, "train_metrics": metrics, "generator": gen, "experiments": exp,
        "missing": missing,
    }


def render_report(context: dict) -> str:
    """Render eae/templates/report.html.j2 (autoescaped) with ``context``."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("eae", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
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
