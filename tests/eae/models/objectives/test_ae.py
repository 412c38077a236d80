import pytest
import torch
from torch import nn

from eae.models.networks import ArchConfig
from eae.models.objectives.ae import jacobian_sq_norm
from eae.models.objectives.registry import build_objective
from eae.training.seed import seed_everything

SMALL = ArchConfig(image_shape=(1, 8, 8), latent_dim=3, encoder_channels=(8, 16), decoder_channels=(16, 8))


def test_gradient_penalty_of_a_linear_decoder_is_its_weight_norm():
    torch.manual_seed(0)
    decoder = nn.Linear(5, 7, bias=True)
    z = torch.randn(4, 5, requires_grad=True)
    exact = jacobian_sq_norm(decoder(z), z, probes=0)
    torch.testing.assert_close(exact, decoder.weight.pow(2).sum(), rtol=1e-6, atol=0)
    # Hutchinson's estimate is unbiased: many probes come close.
    estimate = jacobian_sq_norm(decoder(z), z, probes=4000, generator=torch.Generator().manual_seed(1))
    assert abs(float(estimate.detach()) / float(exact.detach()) - 1) < 0.03


def test_gradient_penalty_is_differentiable_in_the_decoder():
    decoder = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4))
    z = torch.randn(8, 3, requires_grad=True)
    jacobian_sq_norm(decoder(z), z, probes=1).backward()
    # The Jacobian depends on every parameter except the output bias.
    assert all(p.grad.abs().sum() > 0 for name, p in decoder.named_parameters() if name != "2.bias")


def test_rae_loss_terms():
    seed_everything(0)
    x = torch.rand(20, 1, 8, 8)
    ae = build_objective("ae", SMALL)
    rae = build_objective("rae", SMALL, {"embedding_weight": 0.5})
    rae.load_state_dict(ae.state_dict())
    loss_ae, _ = ae.loss(x)
    loss_rae, stats = rae.loss(x)
    z = rae.encoder(x)
    torch.testing.assert_close(stats["embedding"], 0.5 * z.pow(2).sum(1).mean().detach())
    torch.testing.assert_close(loss_rae.detach() - loss_ae.detach(), 0.5 * stats["embedding"])
    l2 = build_objective("rae_l2", SMALL, {"embedding_weight": 0.5, "decoder_l2": 0.01})
    l2.load_state_dict(ae.state_dict())
    loss_l2, _ = l2.loss(x)
    torch.testing.assert_close(loss_l2.detach() - loss_rae.detach(), 0.01 * ae.decoder.weight_l2().detach())


def test_rae_sn_layers_have_largest_singular_value_one():
    seed_everything(0)
    model = build_objective("rae_sn", SMALL, {"embedding_weight": 0.1}).train()
    for _ in range(30):  # each train-mode forward runs one power iteration
        model.decoder(torch.randn(10, 3))
    layers = [m for m in model.decoder.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert len(layers) == 3
    for m in layers:
        w = m.weight.detach()
        dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0  # torch's spectral_norm flattens around this dim
        matrix = w.transpose(0, dim).reshape(w.shape[dim], -1)
        assert torch.linalg.matrix_norm(matrix, ord=2) == pytest.approx(1.0, abs=1e-3)
    assert not build_objective("rae", SMALL, {"embedding_weight": 0.1}).arch.spectral_norm


def test_rae_gp_adds_its_penalty():
    seed_everything(0)
    model = build_objective("rae_gp", SMALL, {"embedding_weight": 0.0, "gp_weight": 2.0, "gp_probes": 0})
    loss, stats = model.loss(torch.rand(10, 1, 8, 8))
    torch.testing.assert_close(loss.detach(), stats["recon"] + 2.0 * stats["gradient_penalty"])
    assert float(stats["gradient_penalty"]) > 0
