"""The HTML report: one builder per section of the page and the Jinja2 page itself.

Everything here is a function of arrays and dicts; the caller gathers them (checkpoint, densities,
test images, fid.json, git/DVC provenance, experiments) and calls ``report_context`` (one builder per
section of the page) then ``render_report``. The pictures are made in ``eae.reporting.pictures``, the
tables in ``eae.reporting.tables``. The page is self-contained: every image is a ``data:`` URI, there
are no scripts, external stylesheets or fonts.
"""

from __future__ import annotations

import math

import numpy as np

from eae.evaluation.results import COLUMNS, RECONSTRUCTION, Results, parse_results
from eae.images import image_grid, png_data_uri
from eae.reporting.figures import training_curves
from eae.reporting.paper import display_name
from eae.reporting.pictures import (  # noqa: F401  (interpolation_images: the report stage imports it from here)
    figure_data_uri,
    grid_scale,
    interpolation_images,
    interpolation_picture,
    paired_rows_picture,
)
from eae.reporting.tables import bench_context, claims_context, fid_rows, fid_table, quality_rows, table1_context
from eae.sampling import SAMPLERS

FID_ROWS = (*SAMPLERS, RECONSTRUCTION)
PIXELATED_BELOW = 48  # images narrower than this are shown upscaled with crisp (nearest-neighbour) pixels


def param_groups(params: dict) -> list[tuple[str, list[tuple[str, object]]]]:
    """Nested params -> [(section, [(key, value), ...]), ...]; top-level scalars form 'run'."""
    from eae.reporting.experiments import flatten

    top = [(k, v) for k, v in (params or {}).items() if not isinstance(v, dict)]
    groups = [("run", top)] if top else []
    groups += [(k, list(flatten(v).items())) for k, v in (params or {}).items() if isinstance(v, dict)]
    return groups


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
    claims: dict | None = None,
    bench: dict | None = None,
    fid_problem: str | None = None,
    evaluate_command: str | None = None,
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
    claims: reports/claims.json (``pipelines.claims``: the paper's claims judged from the result cells), or None.
    bench: reports/bench.json (``make bench``), or None.
    fid_problem: why ``fid`` does not belong to this run's checkpoint or density
        (``Results.provenance_problem``): its scores are then refused (shown nowhere) and the page says why.
    evaluate_command: what writes reports/fid.json (shown where it is missing or not this run's), or None.
    """
    missing: list[str] = []
    dataset = run.get("dataset") or "unknown"
    params = run.get("params") or {}
    objective = objective or {"name": "eae", "weights": {"entropy_weight": params.get("entropy_weight")}}
    results = parse_results(fid) if fid is not None and fid_problem is None else None
    table = fid_table(results, dataset, objective["name"], evaluate_command)
    hint = f" ({evaluate_command})" if evaluate_command else ""
    if fid_problem is not None:
        stale = f"reports/fid.json is not this run's: {fid_problem}; its scores are not shown{hint}"
        missing.append(stale)
        table["notes"] = [stale + "." if n.startswith("reports/fid.json is missing") else n for n in table["notes"]]
    elif results is None:
        missing.append(f"reports/fid.json (Fréchet distances): this run has not been evaluated{hint}")
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
        "claims": claims_context(claims),
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
