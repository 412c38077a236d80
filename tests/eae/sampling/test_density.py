import numpy as np
import pytest

from eae.errors import EAEError
from eae.sampling.density import FlowDensity, load_densities, load_samplers, load_temperature, save_densities
from eae.sampling.mixture import Mixture, fit_gmm, fit_isotropic, fit_mvg, mixture_log_prob, select_gmm, split_heldout


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

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    latents = np.concatenate([c + rng.standard_normal((300, 2)) for c in centres])
    mixture, choice = select_gmm(latents, 6, "bic", seed=0)
    assert choice["chosen"] == 3 and len(mixture.weights) == 3 and sorted(choice["scores"]) == [1, 2, 3, 4, 5, 6]
    _, held = select_gmm(latents, 6, "heldout", seed=0)
    assert held["chosen"] >= 3 and held["scores"][3] > held["scores"][2] > held["scores"][1]
    with pytest.raises(EAEError, match="unknown GMM selection"):
        select_gmm(latents, 3, "aic")


def two_clusters(seed: int = 0) -> tuple[np.ndarray, dict]:
    """600 + 400 codes from two well separated Gaussians with different covariances, and each cluster's
    share, mean and (maximum-likelihood) covariance: the answer a mixture fit should find."""
    rng = np.random.default_rng(seed)
    clusters = [
        rng.multivariate_normal([-6.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], 600),
        rng.multivariate_normal([6.0, 2.0], [[0.5, 0.0], [0.0, 2.0]], 400),
    ]
    truth = {
        "weights": np.array([0.6, 0.4]),
        "means": np.array([c.mean(0) for c in clusters]),
        "covariances": np.array([np.cov(c.T, bias=True) for c in clusters]),
    }
    return np.concatenate(clusters), truth


def heaviest(m, n: int):
    order = np.argsort(-m.weights)[:n]
    order = order[np.argsort(m.means[order, 0])]  # left cluster first
    return m.weights[order], m.means[order], m.covariances[order]


def bayesian_posterior(x: np.ndarray, truth: dict, counts=(600, 400)) -> tuple[np.ndarray, np.ndarray]:
    """The means and covariances a variational Bayesian GMM reports for clusters it separates exactly
    (scikit-learn's priors: mean prior m0 = the data mean with precision 1, Wishart prior with the data's
    covariance Psi and d degrees of freedom): for a cluster of N codes with mean xbar and covariance S,

        mean = (N xbar + m0) / (N + 1)
        cov  = (Psi + N S + N / (N + 1) (xbar - m0)(xbar - m0)^T) / (d + N)"""
    m0, psi, d = x.mean(0), np.cov(x.T), x.shape[1]
    means, covs = [], []
    for n, xbar, s in zip(counts, truth["means"], truth["covariances"]):
        diff = xbar - m0
        means.append((n * xbar + m0) / (n + 1))
        covs.append((psi + n * s + n / (n + 1) * np.outer(diff, diff)) / (d + n))
    return np.array(means), np.array(covs)


@pytest.mark.parametrize(
    "kind, k, prior",
    [
        ("full", 2, "dirichlet_process"),
        ("bayesian", 2, "dirichlet_process"),
        ("bayesian", 10, "dirichlet_process"),
        ("bayesian", 10, "dirichlet_distribution"),
    ],
)
def test_full_and_bayesian_gmm_recover_two_clusters(kind, k, prior):
    """Both kinds find the two clusters (the full GMM their maximum-likelihood statistics, the Bayesian one
    its posterior's); the Bayesian weight prior (1/K) empties the 8 spare components of K = 10."""
    x, truth = two_clusters()
    m = fit_gmm(x, k, seed=0, max_iter=2000, kind=kind, weight_prior=prior)
    weights, means, covs = heaviest(m, 2)
    expected_means, expected_covs = (
        (truth["means"], truth["covariances"]) if kind == "full" else bayesian_posterior(x, truth)
    )
    assert len(m.weights) == k
    np.testing.assert_allclose(weights, truth["weights"], atol=0.002)
    np.testing.assert_allclose(means, expected_means, atol=1e-3)
    np.testing.assert_allclose(covs, expected_covs, atol=2e-3)
    assert weights.sum() > 0.997


def test_default_gmm_is_the_fit_before_the_new_options():
    """Defaults (kind full, n_init 1) give bit for bit the scikit-learn fit fit_density made before."""
    from sklearn.mixture import GaussianMixture

    x = np.random.default_rng(3).standard_normal((500, 4)) * [1, 2, 3, 4]
    old = GaussianMixture(5, covariance_type="full", reg_covar=1e-6, max_iter=200, random_state=7).fit(x)
    new = fit_gmm(x, 5, seed=7)
    for got, expected in zip((new.weights, new.means, new.covariances), (old.weights_, old.means_, old.covariances_)):
        np.testing.assert_array_equal(got, expected)


def test_more_initialisations_never_fit_worse():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal((150, 2)) * 0.3 + c for c in rng.uniform(-4, 4, (8, 2))])
    one = mixture_log_prob(fit_gmm(x, 8, seed=1, n_init=1), x).mean()
    several = mixture_log_prob(fit_gmm(x, 8, seed=1, n_init=8), x).mean()
    assert several >= one - 1e-9


def test_unknown_kind_and_weight_prior_are_refused():
    x, _ = two_clusters()
    with pytest.raises(EAEError, match="unknown GMM kind"):
        fit_gmm(x, 2, kind="diag")
    with pytest.raises(EAEError, match="unknown weight prior"):
        fit_gmm(x, 2, kind="bayesian", weight_prior="beta")


def test_mixture_log_prob_is_the_mixture_density():
    from scipy.stats import multivariate_normal

    x, truth = two_clusters()
    m = Mixture(truth["weights"], truth["means"], truth["covariances"])
    expected = np.log(
        sum(
            w * multivariate_normal(mu, c).pdf(x)
            for w, mu, c in zip(truth["weights"], truth["means"], truth["covariances"])
        )
    )
    np.testing.assert_allclose(mixture_log_prob(m, x), expected, rtol=1e-10)
    empty = Mixture(np.array([1.0, 0.0]), truth["means"], truth["covariances"])  # log 0 for the empty component
    np.testing.assert_allclose(
        mixture_log_prob(empty, x), multivariate_normal(truth["means"][0], truth["covariances"][0]).logpdf(x)
    )


@pytest.mark.parametrize("criterion", ["bic", "heldout"])
def test_selection_works_with_the_bayesian_kind(criterion):
    x, _ = two_clusters()
    mixture, choice = select_gmm(x, 4, criterion, seed=0, kind="bayesian", max_iter=500)
    assert choice["chosen"] == 2 if criterion == "bic" else choice["chosen"] >= 2
    assert len(mixture.weights) == choice["chosen"] and sorted(choice["scores"]) == [1, 2, 3, 4]
    assert (
        choice["scores"][2] < choice["scores"][1] if criterion == "bic" else choice["scores"][2] > choice["scores"][1]
    )


def test_split_heldout_is_seeded_and_disjoint():
    fit, held = split_heldout(10, 0.2, seed=0)
    assert len(held) == 2 and sorted(np.concatenate([fit, held]).tolist()) == list(range(10))
    assert np.array_equal(held, split_heldout(10, 0.2, seed=0)[1])
    assert len(split_heldout(2, 0.9, seed=0)[0]) == 1  # at least one code is left to fit


def flow_density(dim: int = 3) -> FlowDensity:
    from eae.sampling.flow import RealNVP

    flow = RealNVP(dim, layers=2, hidden=4)
    return FlowDensity(
        {"model": flow.config, "fit": {"best_epoch": 3}}, {k: v.numpy() for k, v in flow.state_dict().items()}
    )


def test_density_file_with_a_flow_and_a_temperature_round_trips_without_pickle(tmp_path):
    import zipfile

    rng = np.random.default_rng(2)
    mixtures = {"isotropic": fit_isotropic(3), "mvg": fit_mvg(rng.standard_normal((100, 3)))}
    flow = flow_density()
    save_densities(tmp_path / "d.npz", mixtures, flow=flow, temperature=0.7)
    with np.load(tmp_path / "d.npz", allow_pickle=False) as f:  # every array loads without pickle
        assert all(f[k].dtype != object for k in f.files)
    with zipfile.ZipFile(tmp_path / "d.npz") as z:
        assert "temperature.npy" in z.namelist() and "flow.config.npy" in z.namelist()
    back = load_samplers(tmp_path / "d.npz")
    assert list(back) == ["isotropic", "mvg", "flow"]
    assert isinstance(back["flow"], FlowDensity) and back["flow"].config == flow.config and back["flow"].dim == 3
    assert set(back["flow"].arrays) == set(flow.arrays)
    for k, v in flow.arrays.items():
        np.testing.assert_array_equal(back["flow"].arrays[k], v)
    assert load_temperature(tmp_path / "d.npz") == 0.7
    assert set(load_densities(tmp_path / "d.npz")) == {"isotropic", "mvg"}  # the flow is no mixture


def test_temperature_one_writes_the_file_of_before(tmp_path):
    """At tau = 1 nothing is added: the default parameters' density file is byte for byte what it was."""
    mixtures = {"isotropic": fit_isotropic(2), "gmm": fit_gmm(two_clusters()[0], 2)}
    save_densities(tmp_path / "new.npz", mixtures, temperature=1.0)
    arrays = {
        f"{n}_{part}": getattr(m, part) for n, m in mixtures.items() for part in ("weights", "means", "covariances")
    }
    np.savez(tmp_path / "old.npz", **arrays)  # what save_densities wrote before temperatures and flows
    assert (tmp_path / "new.npz").read_bytes() == (tmp_path / "old.npz").read_bytes()
    assert load_temperature(tmp_path / "new.npz") == 1.0


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_bad_temperatures_are_refused(tmp_path, value):
    with pytest.raises(EAEError, match="temperature"):
        save_densities(tmp_path / "d.npz", {"isotropic": fit_isotropic(2)}, temperature=value)
    np.savez(
        tmp_path / "bad.npz",
        isotropic_weights=np.ones(1),
        isotropic_means=np.zeros((1, 2)),
        isotropic_covariances=np.eye(2)[None],
        temperature=np.array(value),
    )
    with pytest.raises(EAEError, match="temperature"):
        load_temperature(tmp_path / "bad.npz")


def test_non_finite_flow_parameters_are_refused(tmp_path):
    flow = flow_density()
    name = next(iter(flow.arrays))
    flow.arrays[name] = np.full_like(flow.arrays[name], np.nan)
    save_densities(tmp_path / "d.npz", {"isotropic": fit_isotropic(3)}, flow=flow)
    with pytest.raises(EAEError, match=f"flow parameters {name} hold NaN"):
        load_samplers(tmp_path / "d.npz")
