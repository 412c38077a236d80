import math

import torch
from torch.distributions import Normal, kl_divergence

from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.models.objectives.vae import fit_second_stage, gaussian_kl, gaussian_nll
from eae.models.objectives.weights import TwoStageWeights
from eae.training.seed import seed_everything

SMALL = ArchConfig(image_shape=(1, 8, 8), latent_dim=3, encoder_channels=(8, 16), decoder_channels=(16, 8))


def test_kl_matches_the_closed_form_of_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 4), torch.randn(6, 4)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert float(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3))) == 0.0


def test_gaussian_nll_is_the_negative_log_density():
    torch.manual_seed(0)
    x, x_hat, log_gamma = torch.randn(10), torch.randn(10), torch.tensor(-0.7)
    expected = -Normal(x_hat, log_gamma.exp().sqrt()).log_prob(x).sum()
    torch.testing.assert_close(gaussian_nll((x - x_hat).pow(2).sum(), log_gamma, 10), expected)


def test_vae_encodes_posterior_means_and_its_loss_adds_the_weighted_kl():
    seed_everything(0)
    model = build_objective("vae", SMALL, {"kl_weight": 0.25})
    x = torch.rand(16, 1, 8, 8)
    mu, logvar = model.posterior(x)
    torch.testing.assert_close(model.encode(x), mu)
    loss, stats = model.loss(x)
    torch.testing.assert_close(stats["kl"], gaussian_kl(mu, logvar).detach())
    torch.testing.assert_close(loss.detach(), stats["recon"] + 0.25 * stats["kl"])


def test_cv_vae_kl_has_the_fixed_variance():
    seed_everything(0)
    model = build_objective("cv_vae", SMALL, {"kl_weight": 1.0, "sigma": 0.7})
    x = torch.rand(16, 1, 8, 8)
    _, stats = model.loss(x)
    mu = model.encoder(x)
    expected = 0.5 * (0.49 + mu.pow(2) - 1 - math.log(0.49)).sum(1).mean()
    torch.testing.assert_close(stats["kl"], expected.detach())


def test_two_stage_first_stage_learns_gamma_and_its_second_stage_fits_codes():
    seed_everything(0)
    model = build_objective("two_stage_vae", SMALL)
    assert model.describe() == {
        "name": "two_stage_vae",
        "weights": {"second_stage": TwoStageWeights().second_stage.model_dump()},
    }
    assert any(name == "log_gamma" for name, _ in model.named_parameters())
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(400, 3, generator=g) @ torch.tensor([[2.0, 0, 0], [0.5, 0.3, 0], [0, 0, 1.0]])
    logvar = torch.full_like(mu, -6.0)
    net, history = fit_second_stage(
        mu, logvar, latent_dim=3, hidden=32, layers=2, epochs=200, batch_size=100, lr=3e-3, generator=g
    )
    assert history[-1] < history[0] - 1.0
    with torch.no_grad():
        z = net(torch.randn(4000, 3, generator=g))
    # N(0, I) decoded by the second stage spreads like the codes (its samples are decoder means, so
    # a little of the codes' variance, γ per dimension, is missing).
    got, want = torch.cov(z.T), torch.cov(mu.T)
    assert abs(float(got.trace() / want.trace()) - 1) < 0.25
    assert abs(float(got[0, 0] / want[0, 0]) - 1) < 0.15
