"""Kozachenko–Leonenko k-nearest-neighbour entropy estimator (differentiable)."""

from __future__ import annotations

import math

import torch

# Squared distances are offset by this before the log: log(rho^2 + EPS) is finite
# with a finite (zero) gradient when two codes coincide, and differs from
# log(rho^2) by less than 1e-6 relative once rho > 1e-3.
EPS = 1e-12


def log_unit_ball_volume(d: int) -> float:
    """log V_d, V_d = pi^(d/2) / Gamma(d/2 + 1), the volume of the unit d-ball."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def kl_entropy(z: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Kozachenko–Leonenko estimate, in nats, of the entropy of the rows of ``z``.

        H = psi(N) - psi(k) + log V_d + (d / N) * sum_i log rho_i

    with rho_i the Euclidean distance from z_i to its k-th nearest neighbour among
    the other N - 1 rows, V_d the unit-ball volume and psi the digamma function.
    For k = 1, psi(N) - psi(1) = psi(N) + gamma (Euler–Mascheroni).

    Vectorised on ``z``'s device. The neighbours are found without gradient; the
    distances to them are recomputed from the differences, so the result is
    differentiable in ``z`` and, via ``log(rho^2 + EPS)``, finite in value and
    gradient when codes coincide. Costs O(N^2 d) time and O(N^2) memory: it is
    meant for minibatches.

    Args:
        z: [N, d] samples, N > k.
        k: which neighbour (1 = nearest).
    Returns:
        A 0-dim tensor in ``z``'s dtype.
    """
    if z.dim() != 2:
        raise ValueError(f"kl_entropy expects a 2-D tensor [N, d], got shape {tuple(z.shape)}")
    n, d = z.shape
    if not 1 <= k < n:
        raise ValueError(f"kl_entropy needs 1 <= k < N, got k={k}, N={n}")
    with torch.no_grad():
        self_pairs = torch.eye(n, dtype=torch.bool, device=z.device)
        dist = torch.cdist(z, z).masked_fill(self_pairs, float("inf"))  # out of place: torch.compile can trace it
        idx = dist.topk(k, dim=1, largest=False).indices[:, k - 1]
    rho_sq = (z - z[idx]).pow(2).sum(dim=1)
    mean_log_rho = 0.5 * torch.log(rho_sq + EPS).mean()
    return digamma_difference(n, k) + log_unit_ball_volume(d) + d * mean_log_rho


def digamma_difference(n: int, k: int) -> float:
    """psi(n) - psi(k) for integers n >= k >= 1: the harmonic sum  sum_{j=k}^{n-1} 1/j
    (from psi(j + 1) = psi(j) + 1/j), a plain float (no tensor, nothing for torch.compile to break on)."""
    return math.fsum(1.0 / j for j in range(k, n))


def gaussian_entropy(cov: torch.Tensor) -> torch.Tensor:
    """Exact entropy of N(mu, cov) in nats: 0.5 * log det(2 pi e cov)."""
    d = cov.shape[-1]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + torch.linalg.slogdet(cov).logabsdet)
