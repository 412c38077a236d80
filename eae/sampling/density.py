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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError
from eae.io import atomic_path, check_regular_file
from eae.sampling import ALL_SAMPLERS, SAMPLERS, TWO_STAGE

__all__ = ["ALL_SAMPLERS", "SAMPLERS", "TWO_STAGE"]  # the names, for this module's readers
_SECOND = "second_stage."


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
    return GaussianMixture(
        n_components, covariance_type="full", reg_covar=reg, max_iter=max_iter, random_state=seed
    ).fit(np.asarray(latents, np.float64))


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


# What np.load raises for a truncated, damaged or crafted .npz (zip members, headers, array data).
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, NotImplementedError)
SECOND_STAGE_CONFIG = ("dim", "latent_dim", "hidden", "layers")  # positive ints, SecondStageVAE's arguments


def read_density_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a density file, read without pickle; one EAEError line naming the file for a missing,
    irregular (a FIFO, a device), truncated or damaged file."""
    path = check_regular_file(path, "density file", "run the fit_density stage first (dvc repro fit_density)")
    try:
        f = np.load(path, allow_pickle=False)
        if isinstance(f, np.ndarray):
            raise ValueError("a single .npy array, not an .npz archive of named arrays")
        with f:
            return {k: f[k] for k in f.files}
    except _UNREADABLE as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise EAEError(f"corrupt density file {path}: {reason}") from None


def load_second_stage(path: str | Path) -> SecondStage | None:
    """The second stage stored in a density file, or None when it has none (checked: its config names
    positive sizes and its arrays are finite numbers of the shapes that network has)."""
    path = Path(path)
    arrays = read_density_arrays(path)
    if _SECOND + "config" not in arrays:
        return None
    try:
        config = json.loads(str(arrays[_SECOND + "config"]))
    except ValueError as exc:
        raise EAEError(f"{path}: second_stage.config is not JSON ({exc})") from None
    if not isinstance(config, dict) or not all(
        isinstance(config.get(k), int) and not isinstance(config.get(k), bool) and config[k] >= 1
        for k in SECOND_STAGE_CONFIG
    ):
        raise EAEError(f"{path}: second_stage.config must give positive integers {', '.join(SECOND_STAGE_CONFIG)}")
    params = {k[len(_SECOND) :]: v for k, v in arrays.items() if k.startswith(_SECOND) and k != _SECOND + "config"}
    bad = [k for k, v in params.items() if not (_real(v) and np.isfinite(v).all())]
    if bad:
        raise EAEError(f"{path}: second stage parameters {', '.join(bad)} hold NaN, infinite or non-numeric values")
    from eae.models.objectives.vae import SecondStageVAE

    expected = {
        k: tuple(v.shape) for k, v in SecondStageVAE(*(config[k] for k in SECOND_STAGE_CONFIG)).state_dict().items()
    }
    wrong = sorted(set(expected) ^ set(params)) or [k for k in expected if tuple(params[k].shape) != expected[k]]
    if wrong:
        k = wrong[0]
        have = list(params[k].shape) if k in params else "nothing"
        need = list(expected[k]) if k in expected else "nothing"
        raise EAEError(f"{path}: second stage parameter '{k}' is {have}, its config {config} needs {need}")
    return SecondStage(config, params)


def _real(a: np.ndarray) -> bool:
    """Real numbers (integers or floats; not booleans, complex numbers, strings or records)."""
    return np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)


def check_mixture(m: Mixture, where: str) -> Mixture:
    """Refuse a mixture whose arrays do not fit together (weights [K], means [K, d], covariances
    [K, d, d]) or hold NaN/infinity or negative weights: sampling it would give NaN images."""
    w, mu, cov = (np.asarray(a) for a in (m.weights, m.means, m.covariances))
    odd = [f"{n} {a.dtype}" for n, a in (("weights", w), ("means", mu), ("covariances", cov)) if not _real(a)]
    if odd:
        raise EAEError(f"{where}: {', '.join(odd)}: expected arrays of real numbers")
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
    for i, c in enumerate(np.asarray(cov, np.float64)):
        try:
            if not np.allclose(c, c.T, rtol=1e-5, atol=1e-8 * max(1.0, float(np.abs(c).max()))):
                raise np.linalg.LinAlgError
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise EAEError(f"{where}: covariance {i} is not symmetric positive definite") from None
    return m


def load_densities(path: str | Path) -> dict[str, Mixture]:
    """The mixtures stored in a density file, by sampler name (each checked by ``check_mixture``)."""
    path = Path(path)
    arrays = read_density_arrays(path)
    names = sorted({k.rsplit("_", 1)[0] for k in arrays if not k.startswith(_SECOND)})
    mixtures = {}
    for n in names:
        missing = [f"{n}_{part}" for part in ("weights", "means", "covariances") if f"{n}_{part}" not in arrays]
        if missing:
            raise EAEError(f"{path}: sampler {n!r} lacks {', '.join(missing)}")
        mixtures[n] = Mixture(arrays[f"{n}_weights"], arrays[f"{n}_means"], arrays[f"{n}_covariances"])
    return {n: check_mixture(m, f"{path} ({n})") for n, m in mixtures.items()}


def load_samplers(path: str | Path) -> dict[str, Mixture | SecondStage]:
    """Every sampler a density file holds, in ``ALL_SAMPLERS`` order: the mixtures, then the
    second stage (``TWO_STAGE``) when there is one."""
    found: dict[str, Mixture | SecondStage] = dict(load_densities(path))
    second = load_second_stage(path)
    if second is not None:
        found[TWO_STAGE] = second
    return {name: found[name] for name in sorted(found, key=lambda n: (ALL_SAMPLERS + (n,)).index(n))}


#: How far (in standard deviations of the codes, per dimension) a fitted component's mean may lie from the
#: codes' mean, and its variances from theirs (squared). A component mean is a weighted mean of codes, and
#: a component's variance is at most the spread of its codes: both stay well inside for any fit; a density
#: of absurd scale (means x 1e30: a generator drawing only 0 and 255 pixels) lies far outside.
PLAUSIBLE_SIGMAS = 10.0


def check_plausible(m: Mixture, code_mean: np.ndarray, code_std: np.ndarray, where: str) -> Mixture:
    """Refuse a mixture whose means or variances are implausible for codes with ``code_mean`` and
    ``code_std`` per dimension (those it was fitted to): a component mean farther than
    PLAUSIBLE_SIGMAS standard deviations from the codes' mean in some dimension, or a variance larger than
    PLAUSIBLE_SIGMAS² times theirs. A dimension whose codes hardly vary is measured against 1e-3 of the
    widest one (no division by zero)."""
    try:
        mean, std = np.asarray(code_mean, np.float64), np.asarray(code_std, np.float64)
    except (TypeError, ValueError):
        raise EAEError(f"{where}: the codes' statistics are not numbers") from None
    if mean.shape != (m.dim,) or std.shape != (m.dim,) or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise EAEError(f"{where}: the codes' statistics do not fit a {m.dim}-dimensional density")
    scale = np.maximum(std, 1e-3 * float(std.max(initial=0.0)) + 1e-12)
    z = np.abs(np.asarray(m.means, np.float64) - mean) / scale  # [K, d]
    k, j = np.unravel_index(int(np.argmax(z)), z.shape)
    if z[k, j] > PLAUSIBLE_SIGMAS:
        raise EAEError(
            f"{where}: component {k}'s mean {float(m.means[k, j]):.4g} in dimension {j} lies {z[k, j]:.3g} standard "
            f"deviations from the codes' mean {mean[j]:.4g} (std {std[j]:.4g}): not a density of these codes "
            "(rerun fit_density)"
        )
    ratio = np.diagonal(np.asarray(m.covariances, np.float64), axis1=1, axis2=2) / scale**2  # [K, d]
    k, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if ratio[k, j] > PLAUSIBLE_SIGMAS**2:
        raise EAEError(
            f"{where}: component {k}'s variance {float(m.covariances[k, j, j]):.4g} in dimension {j} is "
            f"{ratio[k, j]:.3g} times the codes' ({std[j] ** 2:.4g}): not a density of these codes (rerun fit_density)"
        )
    return m
