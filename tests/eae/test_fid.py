import numpy as np
import pytest

from eae.errors import EAEError
from eae.fid import feature_statistics, frechet_distance


def random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T + d * np.eye(d)


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(64), random_spd(64, rng)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_closed_form():
    # Commuting covariances: d^2 = |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 5.0 + 1.0 + 1.0 + 0.0
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_non_commuting_matches_scipy_sqrtm():
    from scipy import linalg

    rng = np.random.default_rng(1)
    s1, s2 = random_spd(20, rng), random_spd(20, rng)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_symmetric():
    rng = np.random.default_rng(2)
    a = (rng.standard_normal(5), random_spd(5, rng))
    b = (rng.standard_normal(5), random_spd(5, rng))
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-10)


def test_singular_covariances_are_handled():
    x = np.random.default_rng(3).standard_normal((10, 30))  # rank 9 < 30
    mu, sigma = feature_statistics(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_mismatched_or_bad_statistics_raise():
    with pytest.raises(EAEError, match="do not match"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(EAEError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))
    with pytest.raises(EAEError):
        feature_statistics(np.zeros((1, 4)))
