"""Gaussian mixtures of the codes: the isotropic N(0, I), the full-covariance Gaussian ("mvg") and the GMM
(maximum likelihood or Bayesian, its number of components chosen on held-out codes or by BIC), their
log-density, and the checks that a stored or fitted mixture can be sampled and fits the codes.
``eae.sampling.density`` stores them. No torch here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from eae.errors import EAEError, StaleArtifact
from eae.sampling import GMM_KINDS, WEIGHT_PRIORS

log = logging.getLogger(__name__)


def _real(a: np.ndarray) -> bool:
    """Real numbers (integers or floats; not booleans, complex numbers, strings or records)."""
    return np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)


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


def _gaussian_mixture(
    latents: np.ndarray,
    n_components: int,
    seed: int,
    reg: float,
    max_iter: int,
    kind: str = "full",
    n_init: int = 1,
    weight_prior: str = "dirichlet_process",
):
    """A fitted scikit-learn mixture with full covariances: ``GaussianMixture`` (``kind`` full, maximum
    likelihood by EM) or ``BayesianGaussianMixture`` (``kind`` bayesian, variational inference) with the
    RAE reference's weight prior: concentration 1 / K, of type ``weight_prior`` (scikit-learn's default
    dirichlet_process, which the reference code leaves in place, or a finite dirichlet_distribution).
    ``n_init`` initialisations (k-means, seeded), the best kept."""
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

    if len(latents) < n_components:
        raise EAEError(f"cannot fit a {n_components}-component GMM to {len(latents)} latents")
    common = {"covariance_type": "full", "reg_covar": reg, "max_iter": max_iter, "n_init": n_init, "random_state": seed}
    if kind == "full":
        model = GaussianMixture(n_components, **common)
    elif kind == "bayesian":
        if weight_prior not in WEIGHT_PRIORS:
            raise EAEError(f"unknown weight prior {weight_prior!r}; use {' or '.join(WEIGHT_PRIORS)}")
        model = BayesianGaussianMixture(
            n_components=n_components,
            weight_concentration_prior_type=weight_prior,
            weight_concentration_prior=1.0 / n_components,
            **common,
        )
    else:
        raise EAEError(f"unknown GMM kind {kind!r}; use {' or '.join(GMM_KINDS)}")
    model.fit(np.asarray(latents, np.float64))
    # The fit's time is (EM iterations) x (linear in the latents): the iteration count depends on the data.
    log.info(
        "%s GMM with %d component(s) on %d latents: %d EM iterations%s",
        kind,
        n_components,
        len(latents),
        model.n_iter_,
        "" if model.converged_ else f" (not converged: max_iter {max_iter})",
    )
    return model


def fit_gmm(
    latents: np.ndarray,
    n_components: int = 10,
    seed: int = 0,
    reg: float = 1e-6,
    max_iter: int = 200,
    *,
    kind: str = "full",
    n_init: int = 1,
    weight_prior: str = "dirichlet_process",
) -> Mixture:
    """A Gaussian mixture with full covariances fitted by scikit-learn (``_gaussian_mixture``): its
    weights, means and covariances (for the Bayesian kind, those of the variational posterior, which
    scikit-learn's own ``sample`` uses too)."""
    gmm = _gaussian_mixture(latents, n_components, seed, reg, max_iter, kind, n_init, weight_prior)
    return Mixture(gmm.weights_, gmm.means_, gmm.covariances_)


def mixture_log_prob(m: Mixture, x: np.ndarray) -> np.ndarray:
    """Log-density of each row of ``x`` [N, d] under the mixture, in nats:

        log p(x) = logsumexp_k [ log w_k - 1/2 |L_k^-1 (x - mu_k)|^2 - sum_i log (L_k)_ii - (d/2) log(2 pi) ]

    with L_k the Cholesky factor of covariance k and w normalised to sum 1 (a zero weight gives
    log 0 = -inf for its term, which logsumexp drops)."""
    from scipy.linalg import solve_triangular
    from scipy.special import logsumexp

    x = np.asarray(x, np.float64)
    w = np.asarray(m.weights, np.float64)
    with np.errstate(divide="ignore"):
        log_w = np.log(w / w.sum())
    terms = np.empty((len(x), len(w)))
    for k, (mean, chol) in enumerate(zip(np.asarray(m.means, np.float64), m.cholesky())):
        white = solve_triangular(chol, (x - mean).T, lower=True)
        half_log_det = np.log(np.diag(chol)).sum()
        terms[:, k] = log_w[k] - 0.5 * (white**2).sum(0) - half_log_det - 0.5 * x.shape[1] * np.log(2 * np.pi)
    return logsumexp(terms, axis=1)


def n_parameters(n_components: int, dim: int) -> int:
    """Free parameters of a full-covariance mixture: K - 1 weights, K d means, K d (d + 1) / 2 covariances."""
    return n_components - 1 + n_components * dim + n_components * dim * (dim + 1) // 2


def split_heldout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit, held-out rows) of n codes: the first round(fraction * n) rows of a seeded
    permutation (``np.random.default_rng(seed)``) are held out, at least one, and at least one is left."""
    if n < 2:
        raise EAEError(f"need at least 2 codes to hold some out, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_out = min(n - 1, max(1, int(round(fraction * n))))
    return order[n_out:], order[:n_out]


def select_gmm(
    latents: np.ndarray,
    max_components: int,
    criterion: str = "bic",
    seed: int = 0,
    reg: float = 1e-6,
    max_iter: int = 200,
    heldout_fraction: float = 0.2,
    *,
    kind: str = "full",
    n_init: int = 1,
    weight_prior: str = "dirichlet_process",
) -> tuple[Mixture, dict]:
    """A GMM (``fit_gmm``'s ``kind``, ``n_init``, ``weight_prior``) whose number of components K in
    1..max_components is chosen by

    - ``bic``: the Bayesian information criterion of the fit to all latents,
      BIC = -2 log L + p log N, p = ``n_parameters(K, d)`` (lowest wins);
    - ``heldout``: the mean log-likelihood of a seeded ``heldout_fraction`` of the latents under a
      mixture fitted to the rest (highest wins); the chosen K is then refitted to all latents.

    Both score the mixture that is sampled (``mixture_log_prob`` of its weights, means and covariances),
    for either kind. For the Bayesian kind, BIC counts all K components' parameters although the weight
    prior may leave some nearly empty: it penalises large K harder than their effective size.

    Returns the mixture and {"criterion", "chosen", "scores": {K: score}}."""
    x = np.asarray(latents, np.float64)
    options = {"kind": kind, "n_init": n_init, "weight_prior": weight_prior}

    def fitted(data: np.ndarray, k: int) -> Mixture:
        return fit_gmm(data, k, seed, reg, max_iter, **options)

    if criterion == "bic":
        ks = range(1, min(max_components, len(x)) + 1)
        scores = {
            k: float(-2.0 * mixture_log_prob(fitted(x, k), x).sum() + n_parameters(k, x.shape[1]) * np.log(len(x)))
            for k in ks
        }
        chosen = min(scores, key=scores.get)
    elif criterion == "heldout":
        fit_rows, held_rows = split_heldout(len(x), heldout_fraction, seed)
        fit_part, held = x[fit_rows], x[held_rows]
        ks = range(1, min(max_components, len(fit_part)) + 1)
        scores = {k: float(mixture_log_prob(fitted(fit_part, k), held).mean()) for k in ks}
        chosen = max(scores, key=scores.get)
    else:
        raise EAEError(f"unknown GMM selection criterion {criterion!r}; use bic or heldout")
    return fitted(x, chosen), {"criterion": criterion, "chosen": chosen, "scores": scores}


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
        raise StaleArtifact(
            f"{where}: component {k}'s mean {float(m.means[k, j]):.4g} in dimension {j} lies {z[k, j]:.3g} standard "
            f"deviations from the codes' mean {mean[j]:.4g} (std {std[j]:.4g}): not a density of these codes",
            "density",
        )
    ratio = np.diagonal(np.asarray(m.covariances, np.float64), axis1=1, axis2=2) / scale**2  # [K, d]
    k, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if ratio[k, j] > PLAUSIBLE_SIGMAS**2:
        raise StaleArtifact(
            f"{where}: component {k}'s variance {float(m.covariances[k, j, j]):.4g} in dimension {j} is "
            f"{ratio[k, j]:.3g} times the codes' ({std[j] ** 2:.4g}): not a density of these codes",
            "density",
        )
    return m
