"""Latent-space diagnostics: how close the codes are to the maximum-entropy N(0, I).

The EAE's BatchNorm fixes every code dimension to mean 0 / variance 1; under that
constraint the entropy is largest for N(0, I), and for any covariance Sigma it is at most
the Gaussian bound 0.5 * log det(2 pi e Sigma) <= (d/2) * log(2 pi e). Maximising the
Kozachenko–Leonenko estimate therefore pushes the codes towards N(0, I). The functions
here compute those three numbers and the statistics the report plots (numpy in, numpy out).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from eae.models.entropy import EPS, gaussian_entropy, kl_entropy, log_unit_ball_volume

# Up to this many codes the full-set estimate calls eae.models.entropy.kl_entropy directly
# (its N x N distance matrix: 4096^2 float64 = 128 MiB); beyond, the same estimator
# runs with the nearest neighbours found chunk by chunk.
MAX_EXACT = 4096


def _as_2d(latents: np.ndarray) -> np.ndarray:
    z = np.asarray(latents, np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"latents must be [N >= 2, d], got shape {z.shape}")
    return z


def kl_entropy_chunked(latents: np.ndarray, k: int = 1, chunk: int = 1024) -> float:
    """The Kozachenko–Leonenko estimate of ``eae.models.entropy.kl_entropy`` (same formula and EPS),
    with the k-th neighbours found ``chunk`` rows at a time: O(chunk * N) memory."""
    z = torch.from_numpy(_as_2d(latents))
    n, d = z.shape
    if not 1 <= k < n:
        raise ValueError(f"kl_entropy needs 1 <= k < N, got k={k}, N={n}")
    log_rho_sq = []
    for start in range(0, n, chunk):
        dist = torch.cdist(z[start : start + chunk], z)
        rows = torch.arange(dist.shape[0])
        dist[rows, rows + start] = float("inf")
        idx = dist.topk(k, dim=1, largest=False).indices[:, k - 1]
        rho_sq = (z[start : start + chunk] - z[idx]).pow(2).sum(dim=1)
        log_rho_sq.append(torch.log(rho_sq + EPS))
    mean_log_rho = 0.5 * torch.cat(log_rho_sq).mean().item()
    const = float(
        torch.special.digamma(torch.tensor(float(n), dtype=torch.float64))
        - torch.special.digamma(torch.tensor(float(k), dtype=torch.float64))
    ) + log_unit_ball_volume(d)
    return const + d * mean_log_rho


def kl_entropy_full(latents: np.ndarray, k: int = 1) -> float:
    """KL estimate over all codes at once (float64): ``kl_entropy`` when N <= MAX_EXACT, else chunked."""
    z = _as_2d(latents)
    if len(z) <= MAX_EXACT:
        return float(kl_entropy(torch.from_numpy(z), k=k))
    return kl_entropy_chunked(z, k=k)


def batch_kl_entropies(latents: np.ndarray, batch_size: int = 100, k: int = 1, seed: int = 0) -> np.ndarray:
    """KL estimates over disjoint random batches of ``batch_size`` codes, as in training
    (incomplete last batch dropped). Empty when there are fewer than ``batch_size`` codes."""
    z = _as_2d(latents)
    if batch_size <= k:
        raise ValueError(f"batch_size must exceed k, got {batch_size} <= {k}")
    order = np.random.default_rng(seed).permutation(len(z))
    stop = len(z) - len(z) % batch_size
    return np.array(
        [float(kl_entropy(torch.from_numpy(z[order[i : i + batch_size]]), k=k)) for i in range(0, stop, batch_size)],
        np.float64,
    )


def isotropic_entropy(d: int) -> float:
    """Entropy of N(0, I_d) in nats: (d/2) * log(2 pi e), the largest possible with unit variances."""
    return 0.5 * d * math.log(2 * math.pi * math.e)


def entropy_vs_bound(latents: np.ndarray, batch_size: int = 100, k: int = 1, seed: int = 0) -> dict:
    """The KL entropy estimates of ``latents`` next to the maximum-entropy bounds.

    Returns a dict of floats (nats) and counts:
        n, d, k, batch_size, n_batches;
        kl_batch_mean, kl_batch_std: over disjoint random batches of ``batch_size`` (None if N < batch_size);
        kl_full: over all N codes;
        gaussian_bound: 0.5 * log det(2 pi e Sigma), Sigma the sample covariance (the most any
            distribution with that covariance can have);
        isotropic: (d/2) log(2 pi e), the entropy of N(0, I);
        gap_full: gaussian_bound - kl_full (>= 0 up to estimator bias; 0 for Gaussian codes);
        kl_full_gaussian, kl_batch_mean_gaussian: the same estimates for a sample of N draws from
            N(mean, Sigma), i.e. what the estimator returns, bias included, when the codes are as
            Gaussian as their covariance allows; kl_gap_gaussian = kl_full_gaussian - kl_full
            compares like with like (about 0 for Gaussian codes, > 0 otherwise).
    """
    z = _as_2d(latents)
    n, d = z.shape
    batch = batch_kl_entropies(z, batch_size, k, seed) if n >= batch_size else np.zeros(0)
    cov = np.atleast_2d(np.cov(z, rowvar=False))
    bound = float(gaussian_entropy(torch.from_numpy(cov)))
    full = kl_entropy_full(z, k)
    ref = gaussian_like(z, seed)
    ref_full = kl_entropy_full(ref, k)
    ref_batch = batch_kl_entropies(ref, batch_size, k, seed) if n >= batch_size else np.zeros(0)
    return {
        "n": int(n),
        "d": int(d),
        "k": int(k),
        "batch_size": int(batch_size),
        "n_batches": int(len(batch)),
        "kl_batch_mean": float(batch.mean()) if len(batch) else None,
        "kl_batch_std": float(batch.std(ddof=1)) if len(batch) > 1 else None,
        "kl_batch": [float(v) for v in batch],
        "kl_full": full,
        "gaussian_bound": bound,
        "isotropic": isotropic_entropy(d),
        "gap_full": bound - full,
        "kl_full_gaussian": ref_full,
        "kl_batch_mean_gaussian": float(ref_batch.mean()) if len(ref_batch) else None,
        "kl_gap_gaussian": ref_full - full,
    }


def gaussian_like(latents: np.ndarray, seed: int = 0) -> np.ndarray:
    """As many draws from N(mean, Sigma) as ``latents`` has rows, with their sample mean and covariance."""
    z = _as_2d(latents)
    cov = np.atleast_2d(np.cov(z, rowvar=False))
    d = cov.shape[0]
    jitter = 1e-10 * max(float(np.trace(cov)) / d, 1e-12)
    chol = np.linalg.cholesky(cov + jitter * np.eye(d))
    eps = np.random.default_rng(seed + 1).standard_normal(z.shape)
    return z.mean(0) + eps @ chol.T


def covariance_eigenvalues(latents: np.ndarray) -> np.ndarray:
    """Eigenvalues of the sample covariance, largest first (all 1 for N(0, I) codes)."""
    cov = np.atleast_2d(np.cov(_as_2d(latents), rowvar=False))
    return np.linalg.eigvalsh(cov)[::-1].copy()


def normal_quantiles(n: int) -> np.ndarray:
    """N(0, 1) quantiles at the plotting positions (i - 0.5) / n, i = 1..n."""
    from scipy.special import ndtri

    return ndtri((np.arange(1, n + 1) - 0.5) / n)


def marginal_stats(latents: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension mean, standard deviation, skewness and excess kurtosis (0, 1, 0, 0 for N(0, 1))."""
    z = _as_2d(latents)
    mean = z.mean(0)
    std = z.std(0, ddof=1)
    c = (z - mean) / np.where(std > 0, std, 1.0)
    return {"mean": mean, "std": std, "skew": (c**3).mean(0), "kurtosis": (c**4).mean(0) - 3.0}
