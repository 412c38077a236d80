"""The learned prior: a RealNVP flow's exact log-density (N(0, I) or mixture base), its inverse, its fit with
early stopping."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from eae.sampling.flow import RealNVP, coupling_masks, fit_flow
from eae.sampling.mixture import fit_gmm, fit_mvg, mixture_log_prob, split_heldout
from tests.helpers.flow import banana, randomised


def test_masks_alternate_and_every_dimension_is_transformed():
    masks = coupling_masks(5, 4)
    assert masks.tolist()[:2] == [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
    assert masks.tolist()[2:] == [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]]
    assert ((1 - masks).sum(0) > 0).all()


def test_identity_layers_give_exactly_the_standard_normal():
    flow = RealNVP(4, layers=3).eval()  # zero-initialised conditioners, loc 0, scale 1
    x = torch.randn(50, 4, dtype=torch.float64)
    flow = flow.double()
    expected = norm.logpdf(x.numpy()).sum(1)
    np.testing.assert_allclose(flow.log_prob(x).detach().numpy(), expected, rtol=0, atol=1e-12)
    with torch.no_grad():
        assert torch.equal(flow(x), x)


def test_log_det_matches_the_numerical_jacobian():
    flow = randomised(RealNVP(3, layers=4, hidden=8).double()).eval()
    for x in torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)):
        jac = torch.autograd.functional.jacobian(lambda v: flow.to_base(v[None])[0][0], x)
        with torch.no_grad():
            _, log_det = flow.to_base(x[None])
        sign, log_abs = torch.linalg.slogdet(jac)
        assert sign != 0
        assert log_det[0].item() == pytest.approx(log_abs.item(), abs=1e-10)


def test_sampling_inverts_the_density_map():
    flow = randomised(RealNVP(6, layers=5, hidden=16).double()).eval()
    x = torch.randn(100, 6, dtype=torch.float64)
    with torch.no_grad():
        y, _ = flow.to_base(x)
        torch.testing.assert_close(flow(y), x, rtol=0, atol=1e-10)


def test_density_integrates_to_one():
    flow = randomised(RealNVP(2, layers=4, hidden=8).double(), seed=3).eval()
    with torch.no_grad():
        flow.scale.fill_(0.5)  # keep the mass well inside the grid
        flow.loc.zero_()
        grid = torch.linspace(-8, 8, 801, dtype=torch.float64)
        xx, yy = torch.meshgrid(grid, grid, indexing="ij")
        density = flow.log_prob(torch.stack([xx.ravel(), yy.ravel()], 1)).exp()
    step = float(grid[1] - grid[0])
    assert float(density.sum()) * step**2 == pytest.approx(1.0, abs=1e-3)


def test_fits_a_non_gaussian_fixture_better_than_one_gaussian_on_held_out_codes():
    x = banana(2000, seed=0)
    flow, record = fit_flow(x, seed=0, heldout_fraction=0.2)
    fit_rows, held_rows = split_heldout(len(x), 0.2, 0)
    gaussian = mixture_log_prob(fit_mvg(x[fit_rows]), x[held_rows]).mean()
    with torch.no_grad():
        mine = flow.log_prob(torch.from_numpy(x[held_rows]).float()).double().mean().item()
    assert mine == pytest.approx(record.best_heldout_log_lik, abs=1e-5)  # the best epoch's flow is returned
    # The true density's entropy is H(x1) + H(x2 | x1) = 1.419 + 0.2150 = 1.634 nats, one Gaussian's ~2.6.
    assert mine > gaussian + 0.7 and mine > -1.75


def test_early_stopping_stops_when_held_out_codes_stop_improving():
    x = banana(60, seed=1)  # 48 codes to fit: a 64-unit flow overfits them within epochs
    flow, record = fit_flow(x, hidden=64, lr=1e-2, batch_size=16, max_epochs=2000, patience=15, seed=0)
    assert record.stopped_early
    assert len(record.train_log_lik) == record.best_epoch + 15 < 2000
    assert record.train_log_lik[-1] > record.train_log_lik[record.best_epoch - 1]  # it kept fitting the training codes
    assert max(record.heldout_log_lik) == record.best_heldout_log_lik == record.heldout_log_lik[record.best_epoch]
    assert record.summary()["epochs_run"] == len(record.train_log_lik)


def test_fit_is_seeded_and_leaves_the_global_rng_alone():
    x = banana(300, seed=2)
    state = torch.get_rng_state()
    a, rec_a = fit_flow(x, max_epochs=5, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    b, rec_b = fit_flow(x, max_epochs=5, seed=4)
    c, _ = fit_flow(x, max_epochs=5, seed=5)
    assert rec_a.heldout_log_lik == rec_b.heldout_log_lik
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        RealNVP(1)
    with pytest.raises(ValueError, match="NaN"):
        fit_flow(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), max_epochs=1)
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        fit_flow(np.zeros(5), max_epochs=1)


def two_blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal((n // 2, 2)) * 0.3 + c for c in ([-3.0, 1.0], [3.0, -1.0])])


def test_identity_layers_over_a_mixture_base_give_that_mixture_at_the_codes_scale():
    """log p(x) = log mixture((x - loc) / scale) - sum log scale while the couplings are the identity."""
    base = fit_gmm(two_blobs(400, 0), 2, seed=0)
    flow = RealNVP(2, layers=3, components=2).double()
    flow.set_base(base)
    with torch.no_grad():
        flow.loc.copy_(torch.tensor([1.0, -2.0]))
        flow.scale.copy_(torch.tensor([2.0, 0.5]))
    x = np.random.default_rng(1).standard_normal((50, 2)) * 3
    expected = mixture_log_prob(base, (x - [1.0, -2.0]) / [2.0, 0.5]) - np.log([2.0, 0.5]).sum()
    with torch.no_grad():
        np.testing.assert_allclose(flow.log_prob(torch.from_numpy(x)).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(flow.base_mixture().covariances, base.covariances, rtol=1e-12)


def test_a_mixture_base_starts_from_the_mixture_and_only_keeps_couplings_that_help():
    x = two_blobs(1000, 2)
    fit_rows, held_rows = split_heldout(len(x), 0.2, 0)
    mixtures = []

    def base(y):
        mixtures.append(fit_gmm(y, 2, seed=0))
        return mixtures[-1]

    flow, record = fit_flow(x, base=base, max_epochs=30, patience=10, seed=0)
    assert flow.config["components"] == 2 and len(mixtures) == 1
    fitted = x[fit_rows]
    standardised = (x[held_rows] - fitted.mean(0)) / fitted.std(0)
    start = mixture_log_prob(mixtures[0], standardised).mean() - np.log(fitted.std(0)).sum()
    assert record.heldout_log_lik[0] == pytest.approx(start, abs=1e-4)  # epoch 0: the mixture itself
    assert record.best_heldout_log_lik >= record.heldout_log_lik[0]
    with torch.no_grad():
        held = flow.log_prob(torch.from_numpy(x[held_rows]).float()).double().mean().item()
    assert held == pytest.approx(record.best_heldout_log_lik, abs=1e-5)
