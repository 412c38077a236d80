import numpy as np
import pytest

from eae.errors import EAEError
from eae.evaluation.fid import feature_statistics, frechet_distance
from tests.helpers.repos import ROOT


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


def test_trace_sqrt_product_factor_paths_agree():
    from eae.evaluation.fid import _sqrt_psd, trace_sqrt_product

    rng = np.random.default_rng(4)
    s1, s2 = random_spd(12, rng), random_spd(12, rng)
    reference = np.sqrt(np.linalg.eigvalsh(_sqrt_psd(s1) @ s2 @ _sqrt_psd(s1))).sum()
    assert trace_sqrt_product(s1, s2) == pytest.approx(reference, rel=1e-12)  # Cholesky of s1
    singular = np.cov(rng.standard_normal((5, 12)), rowvar=False)  # rank 4
    reference = np.sqrt(np.clip(np.linalg.eigvalsh(_sqrt_psd(s2) @ singular @ _sqrt_psd(s2)), 0, None)).sum()
    # sqrt of round-off-sized eigenvalues limits agreement for singular matrices (to ~1e-9 here)
    assert trace_sqrt_product(singular, s2) == pytest.approx(reference, rel=1e-7)  # Cholesky of s2
    both = np.cov(rng.standard_normal((5, 12)), rowvar=False)
    reference = np.sqrt(np.clip(np.linalg.eigvalsh(_sqrt_psd(both) @ singular @ _sqrt_psd(both)), 0, None)).sum()
    assert trace_sqrt_product(singular, both) == pytest.approx(reference, rel=1e-7)  # neither is definite


def test_matches_pytorch_fid_on_2048_d_statistics():
    """Pool3-sized statistics of realistic rank (3000 samples): same value as pytorch-fid's
    sqrtm-based calculate_frechet_distance (which takes tens of seconds on a CPU)."""
    pytorch_fid = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(5)
    d = 2048

    def activations(shift):  # non-negative, correlated, skewed like Inception pool3 features
        return np.maximum(rng.standard_normal((3000, d)) @ (rng.standard_normal((d, d)) / np.sqrt(d)) + shift, 0.0)

    try:  # BLAS threads fighting over a busy CPU make this several times slower
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        threadpool_limits = contextlib.nullcontext
    with threadpool_limits(1):
        mu1, sigma1 = feature_statistics(activations(0.2))
        mu2, sigma2 = feature_statistics(activations(0.3))
        ours = frechet_distance(mu1, sigma1, mu2, sigma2)
        theirs = float(pytorch_fid.calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_math_and_stats_files_need_no_torch(tmp_path):
    """``import eae.evaluation.fid`` and FID between two .npz files import neither torch nor pytorch-fid."""
    import subprocess
    import sys

    from eae.evaluation.fid import save_statistics

    rng = np.random.default_rng(6)
    save_statistics(tmp_path / "a.npz", rng.standard_normal(4), random_spd(4, rng))
    save_statistics(tmp_path / "b.npz", rng.standard_normal(4), random_spd(4, rng))
    code = (
        "import sys, eae.evaluation.fid; rc = eae.evaluation.fid.main([sys.argv[1], sys.argv[2]]); "
        "assert not any(m.split('.')[0] in ('torch', 'pytorch_fid', 'torchvision') for m in sys.modules); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.npz"), str(tmp_path / "b.npz")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("FID:  ") and float(done.stdout.split()[1]) > 0
