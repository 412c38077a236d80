import numpy as np
import pytest

from eae.errors import EAEError
from eae.sampling.density import fit_gmm, fit_isotropic, fit_mvg, load_densities, save_densities


def test_mvg_recovers_known_mean_and_covariance():
    rng = np.random.default_rng(0)
    mean = np.array([1.0, -2.0, 0.5])
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    x = rng.multivariate_normal(mean, cov, size=50_000)
    m = fit_mvg(x)
    np.testing.assert_allclose(m.means[0], mean, atol=0.03)
    np.testing.assert_allclose(m.covariances[0], cov, atol=0.04)
    assert m.weights.tolist() == [1.0]


def test_isotropic_is_standard_normal():
    m = fit_isotropic(4)
    np.testing.assert_array_equal(m.means, np.zeros((1, 4)))
    np.testing.assert_array_equal(m.covariances[0], np.eye(4))


def test_gmm_finds_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([rng.standard_normal((1000, 2)) + c for c in centres])
    m = fit_gmm(x, n_components=3, seed=0)
    found = m.means[np.argsort(m.means[:, 0] + 0.1 * m.means[:, 1])]
    np.testing.assert_allclose(found, centres[[0, 2, 1]], atol=0.15)
    np.testing.assert_allclose(m.weights, 1 / 3, atol=0.01)
    assert m.covariances.shape == (3, 2, 2)


def test_gmm_needs_enough_points():
    with pytest.raises(EAEError):
        fit_gmm(np.zeros((5, 2)), n_components=10)


def test_npz_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(2)
    dens = {"isotropic": fit_isotropic(3), "mvg": fit_mvg(rng.standard_normal((100, 3)))}
    save_densities(tmp_path / "d.npz", dens)
    back = load_densities(tmp_path / "d.npz")
    assert set(back) == {"isotropic", "mvg"}
    np.testing.assert_array_equal(back["mvg"].covariances, dens["mvg"].covariances)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(EAEError, match="missing"):
        load_densities(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EAEError, match="corrupt"):
        load_densities(tmp_path / "bad.npz")


def test_gmm_selection_finds_the_number_of_clusters():
    from eae.sampling.density import select_gmm

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    latents = np.concatenate([c + rng.standard_normal((300, 2)) for c in centres])
    mixture, choice = select_gmm(latents, 6, "bic", seed=0)
    assert choice["chosen"] == 3 and len(mixture.weights) == 3 and sorted(choice["scores"]) == [1, 2, 3, 4, 5, 6]
    _, held = select_gmm(latents, 6, "heldout", seed=0)
    assert held["chosen"] >= 3 and held["scores"][3] > held["scores"][2] > held["scores"][1]
    with pytest.raises(EAEError, match="unknown GMM selection"):
        select_gmm(latents, 3, "aic")
