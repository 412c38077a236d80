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


def kl_entropy(z: torch.Tensor, k: int = 1, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Kozachenko–Leonenko estimate, in nats, of the entropy of the rows of ``z``.

        H = psi(N) - psi(k) + log V_d + (d / N) * sum_i log rho_i

    with rho_i the Euclidean distance from z_i to its k-th nearest neighbour among
    the other N - 1 rows, V_d the unit-ball volume and psi the digamma function.
    For k = 1, psi(N) - psi(1) = psi(N) + gamma (Euler–Mascheroni).

    With ``reference`` [M, d] (samples of the same law held fixed, e.g. detached codes of earlier
    minibatches), the sample is the N + M rows together and the estimator's terms are taken at the
    N rows of ``z``: rho_i is the distance to the k-th nearest of the other N + M - 1 rows and

        H = psi(N + M) - psi(k) + log V_d + (d / N) * sum_{i <= N} log rho_i

    (M = 0, or None, is the estimate above). A larger sample puts the neighbours nearer, so the
    estimate sees the law's local density at a finer scale than one minibatch can.

    Vectorised on ``z``'s device. The neighbours are found without gradient; the
    distances to them are recomputed from the differences, so the result is
    differentiable in ``z`` (not in ``reference``) and, via ``log(rho^2 + EPS)``, finite in value
    and gradient when codes coincide. Costs O(N (N + M) d) time and O(N (N + M)) memory: it is
    meant for minibatches.

    Args:
        z: [N, d] samples, N >= 1 and N + M > k.
        k: which neighbour (1 = nearest).
        reference: [M, d] further samples (no gradient), or None.
    Returns:
        A 0-dim tensor in ``z``'s dtype.
    """
    if z.dim() != 2:
        raise ValueError(f"kl_entropy expects a 2-D tensor [N, d], got shape {tuple(z.shape)}")
    n, d = z.shape
    if reference is not None and (reference.dim() != 2 or reference.shape[1] != d):
        raise ValueError(f"kl_entropy: reference must be [M, {d}], got shape {tuple(reference.shape)}")
    pool = z if reference is None or len(reference) == 0 else torch.cat([z, reference.detach().to(z.dtype)])
    m = len(pool)
    if not (n >= 1 and 1 <= k < m):
        raise ValueError(f"kl_entropy needs 1 <= k < N + M, got k={k}, N={n}, M={m - n}")
    with torch.no_grad():
        self_pairs = torch.eye(n, m, dtype=torch.bool, device=z.device)
        dist = torch.cdist(z, pool).masked_fill(self_pairs, float("inf"))  # out of place: torch.compile can trace it
        idx = dist.topk(k, dim=1, largest=False).indices[:, k - 1]
    rho_sq = (z - pool[idx]).pow(2).sum(dim=1)
    mean_log_rho = 0.5 * torch.log(rho_sq + EPS).mean()
    return digamma_difference(m, k) + log_unit_ball_volume(d) + d * mean_log_rho


def digamma_difference(n: int, k: int) -> float:
    """psi(n) - psi(k) for integers n >= k >= 1: the harmonic sum  sum_{j=k}^{n-1} 1/j
    (from psi(j + 1) = psi(j) + 1/j), a plain float (no tensor, nothing for torch.compile to break on)."""
    return math.fsum(1.0 / j for j in range(k, n))


def gaussian_entropy(cov: torch.Tensor) -> torch.Tensor:
    """Exact entropy of N(mu, cov) in nats: 0.5 * log det(2 pi e cov)."""
    d = cov.shape[-1]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + torch.linalg.slogdet(cov).logabsdet)
