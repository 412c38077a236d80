"""Ex-post latent densities (the samplers' parameters), shared by evaluation and export.

Every density is stored as a Gaussian mixture (weights [K], means [K, d],
covariances [K, d, d]); isotropic N(0, I) and the full-covariance Gaussian
("mvg") are mixtures with K = 1. The two-stage VAE adds a fourth sampler, its
second-stage VAE (``eae.models.objectives.vae.SecondStageVAE``), stored as named arrays
plus a JSON config. Everything lives in one .npz (no pickle):

    <sampler>_weights, <sampler>_means, <sampler>_covariances     for each mixture
    second_stage.config (JSON string), second_stage.<parameter>    when there is a second stage
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError
from eae.io import atomic_path
from eae.sampling import ALL_SAMPLERS, SAMPLERS, TWO_STAGE

__all__ = ["ALL_SAMPLERS", "SAMPLERS", "TWO_STAGE"]  # the names, for this module's readers
_SECOND = "second_stage."
log = logging.getLogger(__name__)


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


def _gaussian_mixture(latents: np.ndarray, n_components: int, seed: int, reg: float, max_iter: int):
    from sklearn.mixture import GaussianMixture

    if len(latents) < n_components:
        raise EAEError(f"cannot fit a {n_components}-component GMM to {len(latents)} latents")
    gmm = GaussianMixture(n_components, covariance_type="full", reg_covar=reg, max_iter=max_iter, random_state=seed)
    gmm.fit(np.asarray(latents, np.float64))
    # The fit's time is (EM iterations) x (linear in the latents): the iteration count depends on the data.
    log.info(
        "GMM with %d component(s) on %d latents: %d EM iterations%s",
        n_components,
        len(latents),
        gmm.n_iter_,
        "" if gmm.converged_ else f" (not converged: max_iter {max_iter})",
    )
    return gmm


def fit_gmm(
    latents: np.ndarray, n_components: int = 10, seed: int = 0, reg: float = 1e-6, max_iter: int = 200
) -> Mixture:
    """scikit-learn GaussianMixture with full covariances."""
    gmm = _gaussian_mixture(latents, n_components, seed, reg, max_iter)
    return Mixture(gmm.weights_, gmm.means_, gmm.covariances_)


def select_gmm(
    latents: np.ndarray,
    max_components: int,
    criterion: str = "bic",
    seed: int = 0,
    reg: float = 1e-6,
    max_iter: int = 200,
    heldout_fraction: float = 0.2,
) -> tuple[Mixture, dict]:
    """A full-covariance GMM whose number of components K in 1..max_components is chosen by

    - ``bic``: the Bayesian information criterion of the fit to all latents,
      BIC = -2 log L + p log N, p = K - 1 + K d + K d (d + 1) / 2 free parameters (lowest wins);
    - ``heldout``: the mean log-likelihood of a seeded ``heldout_fraction`` of the latents under a
      mixture fitted to the rest (highest wins); the chosen K is then refitted to all latents.

    Returns the mixture and {"criterion", "chosen", "scores": {K: score}}."""
    x = np.asarray(latents, np.float64)
    ks = range(1, min(max_components, len(x)) + 1)
    if criterion == "bic":
        scores = {k: float(_gaussian_mixture(x, k, seed, reg, max_iter).bic(x)) for k in ks}
        chosen = min(scores, key=scores.get)
    elif criterion == "heldout":
        order = np.random.default_rng(seed).permutation(len(x))
        n_out = max(1, int(round(heldout_fraction * len(x))))
        fit_part, held = x[order[n_out:]], x[order[:n_out]]
        ks = range(1, min(max_components, len(fit_part)) + 1)
        scores = {k: float(_gaussian_mixture(fit_part, k, seed, reg, max_iter).score(held)) for k in ks}
        chosen = max(scores, key=scores.get)
    else:
        raise EAEError(f"unknown GMM selection criterion {criterion!r}; use bic or heldout")
    return fit_gmm(x, chosen, seed, reg, max_iter), {"criterion": criterion, "chosen": chosen, "scores": scores}


@dataclass
class SecondStage:
    """A second-stage sampler's parameters: ``config`` (JSON-like) and float arrays by parameter name."""

    config: dict
    arrays: dict[str, np.ndarray]


def save_densities(path: str | Path, densities: dict[str, Mixture], second_stage: SecondStage | None = None) -> None:
    arrays = {}
    for name, m in densities.items():
        arrays.update({f"{name}_weights": m.weights, f"{name}_means": m.means, f"{name}_covariances": m.covariances})
    if second_stage is not None:
        arrays[_SECOND + "config"] = np.array(json.dumps(second_stage.config, sort_keys=True))
        arrays.update({_SECOND + k: np.asarray(v) for k, v in second_stage.arrays.items()})
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def load_second_stage(path: str | Path) -> SecondStage | None:
    """The second stage stored in a density file, or None when it has none."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if _SECOND + "config" not in f.files:
                return None
            config = json.loads(str(f[_SECOND + "config"]))
            arrays = {k[len(_SECOND) :]: f[k] for k in f.files if k.startswith(_SECOND) and k != _SECOND + "config"}
    except FileNotFoundError:
        raise EAEError(f"missing {path}: run the fit_density stage first (dvc repro fit_density)") from None
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise EAEError(f"corrupt density file {path}: {' '.join(str(exc).split())}") from None
    bad = [k for k, v in arrays.items() if not (np.issubdtype(v.dtype, np.number) and np.isfinite(v).all())]
    if bad:
        raise EAEError(f"{path}: second stage parameters {', '.join(bad)} hold NaN, infinite or non-numeric values")
    return SecondStage(config, arrays)


def check_mixture(m: Mixture, where: str) -> Mixture:
    """Refuse a mixture whose arrays do not fit together (weights [K], means [K, d], covariances
    [K, d, d]) or hold NaN/infinity or negative weights: sampling it would give NaN images."""
    w, mu, cov = (np.asarray(a) for a in (m.weights, m.means, m.covariances))
    if not all(np.issubdtype(a.dtype, np.number) for a in (w, mu, cov)):
        raise EAEError(f"{where}: non-numeric arrays")
    if (
        w.ndim != 1
        or len(w) < 1
        or mu.ndim != 2
        or len(mu) != len(w)
        or mu.shape[1] < 1
        or cov.shape != (len(w), mu.shape[1], mu.shape[1])
    ):
        raise EAEError(
            f"{where}: shapes do not fit together: weights {list(w.shape)}, means {list(mu.shape)}, "
            f"covariances {list(cov.shape)} (expected [K], [K, d], [K, d, d])"
        )
    for name, a in (("weights", w), ("means", mu), ("covariances", cov)):
        if not np.isfinite(a).all():
            raise EAEError(f"{where}: {name} hold NaN or infinite values")
    if (w < 0).any() or w.sum() <= 0:
        raise EAEError(f"{where}: weights must be non-negative with a positive sum")
    return m


def load_densities(path: str | Path) -> dict[str, Mixture]:
    """The mixtures stored in a density file, by sampler name (each checked by ``check_mixture``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            names = sorted({k.rsplit("_", 1)[0] for k in f.files if not k.startswith(_SECOND)})
            mixtures = {n: Mixture(f[f"{n}_weights"], f[f"{n}_means"], f[f"{n}_covariances"]) for n in names}
    except FileNotFoundError:
        raise EAEError(f"missing {path}: run the fit_density stage first (dvc repro fit_density)") from None
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise EAEError(f"corrupt density file {path}: {' '.join(str(exc).split())}") from None
    return {n: check_mixture(m, f"{path} ({n})") for n, m in mixtures.items()}


def load_samplers(path: str | Path) -> dict[str, Mixture | SecondStage]:
    """Every sampler a density file holds, in ``ALL_SAMPLERS`` order: the mixtures, then the
    second stage (``TWO_STAGE``) when there is one."""
    found: dict[str, Mixture | SecondStage] = dict(load_densities(path))
    second = load_second_stage(path)
    if second is not None:
        found[TWO_STAGE] = second
    return {name: found[name] for name in sorted(found, key=lambda n: (ALL_SAMPLERS + (n,)).index(n))}
