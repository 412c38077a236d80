"""The torch generator: mixture, flow and second-stage samplers, the sampling temperature, the standard normal
CDF, the z contract."""

import numpy as np
import pytest
import torch

from eae.export.runtime import draw_inputs, to_uint8_nhwc
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.sampling.generator import (
    FlowSampler,
    Generator,
    MixtureSampler,
    ZGenerator,
    generated_batches,
    standard_normal_cdf,
)
from eae.sampling.mixture import Mixture, fit_gmm, fit_isotropic
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


def todays_mixture_sample(mixture: Mixture, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The mixture sampler as it was before temperatures (the formula of MixtureSampler then, verbatim)."""
    w = np.asarray(mixture.weights, np.float64)
    thresholds = torch.tensor(np.cumsum(w / w.sum())[:-1], dtype=torch.float32)
    means = torch.tensor(mixture.means, dtype=torch.float32)
    chol = torch.tensor(mixture.cholesky(), dtype=torch.float32)
    component = (u.unsqueeze(1) >= thresholds.unsqueeze(0)).sum(dim=1)
    return torch.matmul(chol[component], noise.unsqueeze(-1)).squeeze(-1) + means[component]


def test_temperature_one_reproduces_todays_samples_bit_for_bit():
    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    mix = fit_gmm(np.random.default_rng(0).standard_normal((300, 3)) * [1, 2, 3], 4, seed=0)
    noise, u = (torch.from_numpy(a) for a in draw_inputs(500, 3, seed=3))
    assert torch.equal(MixtureSampler(mix, temperature=1.0)(noise, u), todays_mixture_sample(mix, noise, u))
    with torch.no_grad():
        expected = model.decoder.baked()(todays_mixture_sample(mix, noise, u))
        assert torch.equal(Generator(mix, model.decoder, temperature=1.0)(noise, u), expected)
    # the evaluate stage's path: the same batches with and without the argument
    plain = torch.cat(list(generated_batches(Generator(mix, model.decoder), 300, 128, seed=5)))
    tau_one = torch.cat(list(generated_batches(Generator(mix, model.decoder, 1.0), 300, 128, seed=5)))
    assert torch.equal(plain, tau_one)


@pytest.mark.parametrize("tau", [0.5, 0.8])
def test_temperature_scales_the_sample_covariance_by_tau_squared(tau):
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    mix = Mixture(np.array([0.25, 0.75]), np.array([[-10.0, 0.0], [10.0, 1.0]]), np.stack([cov, 0.5 * cov]))
    noise, u = (torch.from_numpy(a) for a in draw_inputs(200_000, 2, seed=1))
    z = MixtureSampler(mix, temperature=tau)(noise, u).numpy()
    left = z[:, 0] < 0
    assert left.mean() == pytest.approx(0.25, abs=0.01)  # the weights do not change
    np.testing.assert_allclose(np.cov(z[left].T), tau**2 * cov, atol=0.05 * tau**2)
    np.testing.assert_allclose(np.cov(z[~left].T), tau**2 * 0.5 * cov, atol=0.03 * tau**2)
    np.testing.assert_allclose(z[~left].mean(0), [10.0, 1.0], atol=0.02)  # nor the means
    iso = MixtureSampler(fit_isotropic(2), temperature=tau)(noise, u).numpy()
    np.testing.assert_allclose(np.cov(iso.T), tau**2 * np.eye(2), atol=0.01)  # N(0, tau^2 I)
    # exactly: tau x the untempered sample's offset from its component mean
    plain = MixtureSampler(mix)(noise, u).numpy()
    means = np.where(left[:, None], [-10.0, 0.0], [10.0, 1.0])
    np.testing.assert_allclose(z - means, tau * (plain - means), atol=1e-5)


def test_flow_sampler_maps_tempered_noise_through_the_inverse_flow():
    from eae.sampling.flow import RealNVP
    from tests.helpers.flow import flow_density, randomised

    flow = randomised(RealNVP(3, layers=3, hidden=8)).eval()
    density = flow_density(flow)
    noise, u = torch.randn(64, 3), torch.rand(64)
    with torch.no_grad():
        assert torch.equal(FlowSampler(density)(noise, u), flow(noise))
        assert torch.equal(FlowSampler(density, temperature=0.7)(noise, u), flow(noise * 0.7))
        assert torch.equal(FlowSampler(density)(noise, u), FlowSampler(density)(noise, torch.rand(64)))  # u unused
    assert FlowSampler(density).noise_dim == 3


def test_flow_sampler_with_a_mixture_base_draws_the_base_then_the_flow():
    from eae.sampling.flow import RealNVP
    from tests.helpers.flow import flow_density, randomised

    mix = fit_gmm(np.random.default_rng(0).standard_normal((300, 3)) * [1, 2, 3], 4, seed=0)
    flow = randomised(RealNVP(3, layers=3, hidden=8, components=4))
    flow.set_base(mix)
    flow.eval()
    sampler = FlowSampler(flow_density(flow), temperature=0.6)
    noise, u = (torch.from_numpy(a) for a in draw_inputs(64, 3, seed=2))
    with torch.no_grad():
        expected = flow(MixtureSampler(flow.base_mixture(), temperature=0.6)(noise, u))
        torch.testing.assert_close(sampler(noise, u), expected, rtol=0, atol=1e-6)
        assert not torch.equal(sampler(noise, u), sampler(noise, torch.rand(64)))  # u picks the base component


def test_second_stage_sampler_decodes_tempered_noise():
    from eae.models.objectives.vae import SecondStageVAE
    from eae.sampling.density import SecondStage
    from eae.sampling.generator import SecondStageSampler

    torch.manual_seed(0)
    second = SecondStageVAE(3, 5, 8, 1).eval()
    stage = SecondStage(second.config, {k: v.detach().numpy() for k, v in second.state_dict().items()})
    noise, u = torch.randn(16, 5), torch.rand(16)
    with torch.no_grad():
        assert torch.equal(SecondStageSampler(stage)(noise, u), second(noise))
        assert torch.equal(SecondStageSampler(stage, temperature=0.5)(noise, u), second(noise * 0.5))


def test_bad_temperature_is_refused():
    from eae.errors import EAEError

    with pytest.raises(EAEError, match="temperature"):
        MixtureSampler(fit_isotropic(2), temperature=0.0)
