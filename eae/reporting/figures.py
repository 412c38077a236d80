"""The report's matplotlib figures, built from arrays and dicts.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot (no global
state, no GUI backend: it renders with Agg); ``eae.reporting.pictures.figure_data_uri`` embeds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from eae.evaluation.results import RECONSTRUCTION
from eae.sampling import SAMPLERS

# Sampler colours, the same in every figure.
COLORS = {
    "isotropic": "#1f77b4",
    "mvg": "#ff7f0e",
    "gmm": "#2ca02c",
    "flow": "#d62728",
    "two_stage": "#9467bd",
    "reconstruction": "#7f7f7f",
}
MAX_DIMS = 16  # latent dimensions drawn one by one (histograms, QQ lines)
MAX_LINE_POINTS = 4000  # points kept on the pooled QQ line


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _std_normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def training_curves(history: dict[str, Sequence[float]], entropy_reference: dict[str, float] | None = None):
    """One panel per logged series (loss, recon, the objective's own terms, lr) against epoch.

    ``entropy_reference``: horizontal lines drawn on the entropy panel, label -> nats
    (e.g. the entropy of N(0, I)).
    """
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in history if history.get(k) and k != "lr"] + (["lr"] if history.get("lr") else [])
    titles = {
        "loss": "loss",
        "recon": "reconstruction (sum sq. error / image)",
        "entropy": "KL entropy of a batch (nats)",
        "lr": "learning rate",
        "kl": "KL(q(z|x) || N(0, I)) (nats)",
        "mmd": "MMD² to N(0, I) (IMQ kernel)",
        "embedding": "½||z||²",
        "gradient_penalty": "decoder Jacobian ||J||²_F",
        "gamma": "decoder variance γ",
    }
    fig = _figure(3.3 * max(1, len(keys)), 2.8)
    axes = fig.subplots(1, max(1, len(keys)), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        values = np.asarray(history[key], np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 30 else None)
        ax.set_title(titles.get(key, key), fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        if key == "entropy" and entropy_reference:
            for i, (label, value) in enumerate(entropy_reference.items()):
                ax.axhline(value, color="k", ls=("--", ":", "-.")[i % 3], lw=1, label=f"{label} ({value:.2f})")
            ax.legend(fontsize=7, loc="lower right")
    if not keys:
        axes[0].text(0.5, 0.5, "no training history", ha="center", va="center")
        axes[0].set_axis_off()
    return fig


def marginal_histograms(latents: np.ndarray, max_dims: int = MAX_DIMS):
    """Histogram of each code dimension (the first ``max_dims``) against the N(0, 1) density."""
    z = np.asarray(latents, np.float64)
    d = min(z.shape[1], max_dims)
    ncol = min(d, 4)
    nrow = -(-d // ncol)
    fig = _figure(2.4 * ncol, 1.9 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    lim = max(4.0, float(np.ceil(np.abs(z[:, :d]).max()))) if len(z) else 4.0
    lim = min(lim, 8.0)
    grid = np.linspace(-lim, lim, 200)
    bins = np.linspace(-lim, lim, 41)
    for i, ax in enumerate(axes):
        if i >= d:
            ax.set_axis_off()
            continue
        col = z[:, i]
        ax.hist(np.clip(col, -lim, lim), bins=bins, density=True, color="#9ecae1", edgecolor="#3182bd", lw=0.4)
        ax.plot(grid, _std_normal_pdf(grid), color="#d62728", lw=1.2)
        ax.set_title(f"z[{i}]  mean {col.mean():+.2f}  sd {col.std(ddof=1):.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    return fig


def qq_plot(latents: np.ndarray, max_dims: int = MAX_DIMS):
    """Sorted codes of each dimension (the first ``max_dims``, thin lines) and of all dimensions
    pooled (thick) against N(0, 1) quantiles; the diagonal is a perfect N(0, 1) marginal."""
    from eae.evaluation.diagnostics import normal_quantiles

    z = np.asarray(latents, np.float64)
    fig = _figure(4.2, 4.0)
    ax = fig.subplots()
    q = normal_quantiles(len(z))
    for i in range(min(z.shape[1], max_dims)):
        ax.plot(q, np.sort(z[:, i]), lw=0.7, alpha=0.55)
    pooled = np.sort(z.ravel())
    qp = normal_quantiles(len(pooled))
    if len(pooled) > MAX_LINE_POINTS:  # a line through evenly spaced order statistics looks the same
        keep = np.unique(np.linspace(0, len(pooled) - 1, MAX_LINE_POINTS).round().astype(int))
        pooled, qp = pooled[keep], qp[keep]
    ax.plot(qp, pooled, color="k", lw=2, label="all dimensions pooled")
    lim = float(max(4.0, np.abs(q).max() + 0.5))
    ax.plot([-lim, lim], [-lim, lim], color="#d62728", ls="--", lw=1, label="N(0, 1)")
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("N(0, 1) quantile")
    ax.set_ylabel("code quantile")
    ax.set_title("QQ-plot of the test codes", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def eigenvalue_spectrum(eigenvalues: np.ndarray):
    """Eigenvalues of the code covariance, largest first (N(0, I): all 1); log scale when they
    span a factor of 10 or more."""
    ev = np.asarray(eigenvalues, np.float64)
    fig = _figure(4.2, 4.0)
    ax = fig.subplots()
    idx = np.arange(1, len(ev) + 1)
    ax.plot(idx, np.clip(ev, 1e-12, None), marker="o", ms=3)
    if ev.min() <= 0 or ev.max() / ev.min() >= 10:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(1.1, ev.max() * 1.1))
    ax.axhline(1.0, color="#d62728", ls="--", lw=1, label="N(0, I): every eigenvalue 1")
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("variance along the eigenvector")
    ax.set_title(f"covariance spectrum (sum {ev.sum():.2f}, d = {len(ev)})", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def entropy_comparison(stats: dict):
    """The KL estimates (per batch, their mean, the full set) against the Gaussian bound for the
    codes' covariance and the entropy of N(0, I); ``stats`` is ``eae.evaluation.diagnostics.entropy_vs_bound``."""
    fig = _figure(6.4, 2.9)
    ax = fig.subplots()
    rows = [
        ("N(0, I) (maximum)", stats["isotropic"], "#d62728"),
        ("Gaussian bound ½ log det(2πeΣ)", stats["gaussian_bound"], "#ff7f0e"),
        (f"KL estimate, all {stats['n']} codes", stats["kl_full"], "#1f77b4"),
    ]
    if stats.get("kl_full_gaussian") is not None:
        rows.insert(2, ("KL estimate, Gaussian sample with the same Σ", stats["kl_full_gaussian"], "#9467bd"))
    if stats.get("kl_batch_mean") is not None:
        rows.append((f"KL estimate, batches of {stats['batch_size']} (mean)", stats["kl_batch_mean"], "#2ca02c"))
    labels = [r[0] for r in rows]
    for y, (_, value, color) in enumerate(rows):
        ax.plot([value], [y], "o", color=color, ms=8)
        ax.annotate(f"{value:.2f}", (value, y), textcoords="offset points", xytext=(8, -4), fontsize=9)
    if stats.get("kl_batch"):
        y = len(rows) - 1
        ax.plot(stats["kl_batch"], np.full(len(stats["kl_batch"]), y), "|", color="#2ca02c", ms=12, alpha=0.6)
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    values = [r[1] for r in rows] + list(stats.get("kl_batch") or [])
    span = max(values) - min(values) or 1.0
    ax.set_xlim(min(values) - 0.1 * span, max(values) + 0.25 * span)
    ax.set_xlabel("entropy (nats)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def mixture_weights(weights: np.ndarray):
    """GMM component weights, largest first, against the uniform 1/K."""
    w = np.sort(np.asarray(weights, np.float64))[::-1]
    fig = _figure(4.2, 2.6)
    ax = fig.subplots()
    ax.bar(np.arange(1, len(w) + 1), w, color=COLORS["gmm"])
    ax.axhline(1.0 / len(w), color="k", ls="--", lw=1, label=f"uniform 1/{len(w)}")
    ax.set_xlabel("component (sorted by weight)")
    ax.set_ylabel("weight")
    ax.set_xticks(np.arange(1, len(w) + 1))
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def fid_vs_entropy_weight(points: list[dict], metrics: Sequence[str] = (*SAMPLERS, RECONSTRUCTION)):
    """Fréchet distance per sampler against entropy_weight. ``points``: dicts with
    'entropy_weight' and any of ``metrics`` (missing values are skipped)."""
    fig = _figure(5.2, 3.4)
    ax = fig.subplots()
    betas = [p["entropy_weight"] for p in points]
    for name in metrics:
        xy = sorted((p["entropy_weight"], p[name]) for p in points if p.get(name) is not None)
        if xy:
            ax.plot(*zip(*xy), marker="o", label=name, color=COLORS.get(name))
    positive = [b for b in betas if b > 0]
    if positive and len(positive) == len(betas) and max(positive) / min(positive) >= 10:
        from matplotlib.ticker import FuncFormatter, NullLocator

        ax.set_xscale("log")
        ax.set_xticks(sorted(set(positive)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("entropy_weight β")
    ax.set_ylabel("Fréchet distance (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def table1_errorbars(table: dict, metric: str, ylabel: str):
    """Table 1 as a chart: per objective (x) and sampler (colour), the mean over seeds with ±1 std
    error bars, and the individual seeds as dots."""
    rows = table["rows"]
    columns = [c for c in table["columns"] if c != RECONSTRUCTION]
    fig = _figure(max(6.0, 0.75 * len(rows) + 2), 3.6)
    ax = fig.subplots()
    width = 0.8 / max(1, len(columns))
    for j, column in enumerate(columns):
        xs, means, stds, dots = [], [], [], []
        for i, row in enumerate(rows):
            cell = row["cells"].get(metric, {}).get(column)
            if cell is None:
                continue
            x = i + (j - (len(columns) - 1) / 2) * width
            xs.append(x)
            means.append(cell["mean"])
            stds.append(cell["std"] or 0.0)
            dots += [(x, v) for v in cell["values"]]
        if xs:
            ax.errorbar(xs, means, yerr=stds, fmt="o", ms=5, capsize=3, color=COLORS.get(column), label=column)
            ax.scatter(*zip(*dots), s=6, color=COLORS.get(column), alpha=0.4)
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, ncol=len(columns))
    return fig


def scale_growth(series: dict[str, tuple[Sequence[float], Sequence[float]]]):
    """Wall time against dataset size per stage on log-log axes (``benchmarks/scale.py``), with a dashed
    line of slope 1 through each stage's first point: a stage rising faster than its line is super-linear.
    ``series``: stage -> (sizes, seconds)."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig = _figure(6.4, 3.8)
    ax = fig.subplots()
    sizes = sorted({n for xs, _ in series.values() for n in xs})
    for i, (stage, (xs, ys)) in enumerate(series.items()):
        pts = sorted((x, y) for x, y in zip(xs, ys) if x > 0 and y > 0)
        if not pts:
            continue
        color = f"C{i % 10}"
        ax.plot(*zip(*pts), marker="o", color=color, label=stage)
        (x0, y0), x1 = pts[0], pts[-1][0]
        ax.plot([x0, x1], [y0, y0 * x1 / x0], linestyle="--", linewidth=0.8, color=color, alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("images in the dataset (N)")
    ax.set_ylabel("wall time (s)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    return fig
