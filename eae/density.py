"""Ex-post latent densities and the mixture sampler shared by evaluation and export.

Every density is stored as a Gaussian mixture (weights [K], means [K, d],
covariances [K, d, d]); isotropic N(0, I) and the full-covariance Gaussian
("mvg") are mixtures with K = 1. Stored in a .npz (no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError
from eae.io import atomic_path

SAMPLERS = ("isotropic", "mvg", "gmm")


@dataclass
class Mixture:
    weights: np.ndarray  # [K]
    means: np.ndarray  # [K, d]
    covariances: np.ndarray  # [K, d, d]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def cholesky(self) -> np.ndarray:
        """Lower Cholesky factors [K, d, d] (z = mean + L @ eps, eps ~ N(0, I))."""
        try:
            return np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            raise EAEError("a covariance matrix is not positive definite") from None


def fit_isotropic(d: int) -> Mixture:
    """N(0, I): the prior the entropy term pushes the BatchNorm'd codes towards."""
    return Mixture(np.ones(1), np.zeros((1, d)), np.eye(d)[None])


def fit_mvg(latents: np.ndarray, reg: float = 1e-6) -> Mixture:
    """One Gaussian with the sample mean and (unbiased) covariance, plus reg * I."""
    latents = np.asarray(latents, np.float64)
    cov = np.atleast_2d(np.cov(latents, rowvar=False)) + reg * np.eye(latents.shape[1])
    return Mixture(np.ones(1), latents.mean(0, keepdims=True), cov[None])


def fit_gmm(latents: np.ndarray, n_components: int = 10, seed: int = 0, reg: float = 1e-6,
            max_iter: int = 200) -> Mixture:
    """scikit-learn GaussianMixture with full covariances."""
    from sklearn.mixture import GaussianMixture

    if len(latents) < n_components:
        raise EAEError(f"cannot fit a {n_components}-component GMM to {len(latents)} latents")
    gmm = GaussianMixture(n_components, covariance_type="full", reg_covar=reg, max_iter=max_iter,
                          random_state=seed).fit(np.asarray(latents, np.float64))
    return Mixture(gmm.weights_, gmm.means_, gmm.covariances_)


def save_densities(path: str | Path, densities: dict[str, Mixture]) -> None:
    arrays = {}
    for name, m in densities.items():
        arrays.update({f"{name}_weights": m.weights, f"{name}_means": m.means, f"{name}_covariances": m.covariances})
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def load_densities(path: str | Path) -> dict[str, Mixture]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            names = sorted({k.rsplit("_", 1)[0] for k in f.files})
            return {n: Mixture(f[f"{n}_weights"], f[f"{n}_means"], f[f"{n}_covariances"]) for n in names}
    except FileNotFoundError:
        raise EAEError(f"missing {path}: run the fit_density stage first (dvc repro fit_density)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise EAEError(f"corrupt density file {path}: {exc}") from None
