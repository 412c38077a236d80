"""The torch generator: mixture and second-stage samplers, the standard normal CDF, the z contract."""

import numpy as np
import pytest
import torch

from eae.export.runtime import draw_inputs, to_uint8_nhwc
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.sampling.density import Mixture, fit_gmm
from eae.sampling.generator import Generator, MixtureSampler, ZGenerator, standard_normal_cdf
from tests.helpers.generator import normal_cdf

CFG = ArchConfig((1, 8, 8), 3, (8, 16), (16, 8))


def test_sampler_picks_components_by_u():
    mix = Mixture(np.array([0.2, 0.5, 0.3]), np.array([[0.0, 0], [10, 0], [0, 10]]), np.stack([np.eye(2)] * 3))
    sampler = MixtureSampler(mix)
    u = torch.tensor([0.0, 0.19, 0.2, 0.69, 0.7, 0.999])
    z = sampler(torch.zeros(6, 2), u)
    expected = torch.tensor([[0.0, 0], [0, 0], [10, 0], [10, 0], [0, 10], [0, 10]])
    torch.testing.assert_close(z, expected)


def test_sampler_reproduces_mixture_statistics():
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    mix = Mixture(np.array([0.25, 0.75]), np.array([[-10.0, 0.0], [10.0, 1.0]]), np.stack([cov, 0.5 * cov]))
    noise, u = draw_inputs(200_000, 2, seed=1)
    z = MixtureSampler(mix)(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
    left = z[:, 0] < 0
    assert left.mean() == pytest.approx(0.25, abs=0.01)
    np.testing.assert_allclose(np.cov(z[left].T), cov, atol=0.05)
    np.testing.assert_allclose(np.cov(z[~left].T), 0.5 * cov, atol=0.03)
    np.testing.assert_allclose(z[~left].mean(0), [10.0, 1.0], atol=0.02)


def test_draw_inputs_is_pcg64_from_seed():
    noise, u = draw_inputs(4, 3, seed=7)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(noise, rng.standard_normal((4, 3), dtype=np.float32))
    np.testing.assert_array_equal(u, rng.random(4, dtype=np.float32))
    assert noise.dtype == u.dtype == np.float32 and (u >= 0).all() and (u < 1).all()


def test_standard_normal_cdf_known_values():
    x = torch.tensor([-np.inf, -1.959964, -1.0, 0.0, 1.0, 1.959964, np.inf])
    expected = torch.tensor([0.0, 0.025, 0.158655254, 0.5, 0.841344746, 0.975, 1.0])
    torch.testing.assert_close(standard_normal_cdf(x), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        standard_normal_cdf(torch.linspace(-6, 6, 101)),
        torch.from_numpy(normal_cdf(np.linspace(-6, 6, 101))).float(),
        atol=1e-6,
        rtol=0,
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_z_generator_quantises_like_the_runtime_and_outputs_rgb(channels):
    torch.manual_seed(0)
    model = build_objective("eae", ArchConfig((channels, 8, 8), 3, (8, 16), (16, 8)), {"entropy_weight": 0.1})
    model(torch.rand(16, channels, 8, 8))
    model.eval()
    gen = Generator(fit_gmm(np.random.default_rng(0).standard_normal((300, 3)), 4, seed=0), model.decoder).eval()
    z = torch.from_numpy(np.random.default_rng(1).standard_normal((32, 4)).astype(np.float32))
    with torch.no_grad():
        pixels = ZGenerator(gen)(z).numpy()
        u = torch.from_numpy(normal_cdf(z[:, -1].numpy()).astype(np.float32))
        expected = to_uint8_nhwc(gen(z[:, :-1], u).numpy()).transpose(0, 3, 1, 2)
    assert pixels.dtype == np.uint8 and pixels.shape == (32, 3, 8, 8)
    np.testing.assert_array_equal(pixels, np.broadcast_to(expected, pixels.shape))


def test_z_generator_of_the_two_stage_sampler_has_its_noise_size_and_ignores_the_last_column():
    from eae.models.objectives.vae import SecondStageVAE
    from eae.sampling.density import SecondStage

    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})  # latent_dim 3
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    second = SecondStageVAE(3, 5, 8, 1)  # noise size 5 != latent size 3
    stage = SecondStage(second.config, {k: v.detach().numpy() for k, v in second.state_dict().items()})
    z_gen = ZGenerator(Generator(stage, model.decoder).eval())
    assert z_gen.z_size == 6
    z = torch.randn(8, 6)
    other = torch.cat([z[:, :5], torch.randn(8, 1)], dim=1)
    with torch.no_grad():
        assert torch.equal(z_gen(z), z_gen(other)) and z_gen(z).shape == (8, 3, 8, 8)
