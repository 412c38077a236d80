import math

import numpy as np
import pytest
import torch

from eae.evaluation import diagnostics
from eae.models.entropy import kl_entropy


def rotated_gaussian(n: int, variances, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = len(variances)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(variances) @ q.T
    return rng.multivariate_normal(np.zeros(d), cov, size=n), cov


def test_entropy_vs_bound_for_a_known_gaussian():
    z, cov = rotated_gaussian(3000, [0.25, 1.0, 2.0, 4.0])
    exact = 0.5 * math.log(np.linalg.det(2 * math.pi * math.e * cov))
    stats = diagnostics.entropy_vs_bound(z, batch_size=100, k=1, seed=0)
    assert stats["n"] == 3000 and stats["d"] == 4 and stats["n_batches"] == 30 == len(stats["kl_batch"])
    assert stats["isotropic"] == pytest.approx(2 * math.log(2 * math.pi * math.e), abs=1e-12)
    assert stats["gaussian_bound"] == pytest.approx(exact, abs=0.05)  # sample covariance of 3000 draws
    assert stats["kl_full"] == pytest.approx(exact, abs=0.15)  # KL is consistent for Gaussians
    assert stats["gap_full"] == pytest.approx(stats["gaussian_bound"] - stats["kl_full"])
    assert abs(stats["gap_full"]) < 0.15
    assert abs(stats["kl_gap_gaussian"]) < 0.15 and stats["kl_batch_mean_gaussian"] is not None
    # Batches of 100 overshoot a little (known bias of the estimator), but stay near the truth.
    assert exact - 0.2 < stats["kl_batch_mean"] < exact + 0.6 and stats["kl_batch_std"] > 0


def test_the_bounds_are_ordered_for_standardised_non_gaussian_codes():
    rng = np.random.default_rng(3)
    u = rng.uniform(-1, 1, (2000, 3))
    z = (u - u.mean(0)) / u.std(0)  # unit variances, as BatchNorm makes them
    stats = diagnostics.entropy_vs_bound(z, batch_size=100)
    assert stats["kl_full"] < stats["gaussian_bound"] <= stats["isotropic"] + 1e-9
    assert stats["gap_full"] > 0.1  # a uniform cube has less entropy than the Gaussian with its covariance
    assert stats["kl_gap_gaussian"] > 0.1  # like for like: the estimator on a Gaussian with the same covariance


def test_gaussian_like_matches_mean_and_covariance():
    z, cov = rotated_gaussian(5000, [0.5, 2.0], seed=7)
    ref = diagnostics.gaussian_like(z + 3.0, seed=1)
    assert ref.shape == z.shape
    np.testing.assert_allclose(ref.mean(0), 3.0, atol=0.06)
    np.testing.assert_allclose(np.cov(ref, rowvar=False), np.cov(z, rowvar=False), atol=0.1)


def test_too_few_codes_for_a_batch():
    stats = diagnostics.entropy_vs_bound(np.random.default_rng(0).standard_normal((50, 2)), batch_size=100)
    assert stats["n_batches"] == 0 and stats["kl_batch_mean"] is None and stats["kl_batch_std"] is None
    assert math.isfinite(stats["kl_full"])


def test_chunked_estimate_equals_kl_entropy(monkeypatch):
    z = np.random.default_rng(4).standard_normal((500, 3))
    exact = float(kl_entropy(torch.from_numpy(z), k=2))
    assert diagnostics.kl_entropy_chunked(z, k=2, chunk=64) == pytest.approx(exact, rel=1e-12, abs=1e-12)
    monkeypatch.setattr(diagnostics, "MAX_EXACT", 100)
    assert diagnostics.kl_entropy_full(z, k=2) == pytest.approx(exact, rel=1e-12, abs=1e-12)


def test_covariance_eigenvalues_and_marginals():
    z, cov = rotated_gaussian(20000, [0.5, 1.0, 3.0], seed=5)
    ev = diagnostics.covariance_eigenvalues(z)
    assert np.all(np.diff(ev) <= 0)
    np.testing.assert_allclose(ev, [3.0, 1.0, 0.5], rtol=0.05)
    stats = diagnostics.marginal_stats(np.random.default_rng(6).standard_normal((20000, 2)))
    np.testing.assert_allclose(stats["mean"], 0, atol=0.03)
    np.testing.assert_allclose(stats["std"], 1, atol=0.03)
    np.testing.assert_allclose(stats["skew"], 0, atol=0.1)
    np.testing.assert_allclose(stats["kurtosis"], 0, atol=0.15)


def test_normal_quantiles():
    q = diagnostics.normal_quantiles(5)
    np.testing.assert_allclose(q, -q[::-1], atol=1e-12)
    assert q[2] == 0 and q[-1] == pytest.approx(1.2815515655446004)  # Phi^-1(0.9)
