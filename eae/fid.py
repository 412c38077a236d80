"""Fréchet distance between Gaussians fitted to feature activations (the FID formula).

Feature extraction lives elsewhere (eae.features); this module is math only.
"""

from __future__ import annotations

import numpy as np

from eae.errors import EAEError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise EAEError(f"need at least 2 feature rows of shape [N, D], got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues clipped)."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr( (sqrt(sigma1) sigma2 sqrt(sigma1))^(1/2) )

    The trace term is the sum of square roots of the eigenvalues of the symmetric
    PSD matrix sqrt(sigma1) sigma2 sqrt(sigma1), computed with symmetric
    eigendecompositions in float64 (no scipy.linalg.sqrtm, no complex parts).
    Tiny negative eigenvalues from round-off are clipped to 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise EAEError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    if not (np.isfinite(mu1).all() and np.isfinite(mu2).all() and np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):
        raise EAEError("statistics contain NaN or infinity")
    s1 = _sqrt_psd(0.5 * (sigma1 + sigma1.T))
    m = s1 @ sigma2 @ s1
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(value, 0.0))
