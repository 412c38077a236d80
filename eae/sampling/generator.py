"""The generator: a sampler + the decoder in one torch module (its ONNX export: ``eae.export.onnx``).

Samplers map explicit randomness ``(noise [N, k], u [N])`` to codes [N, d]: ``MixtureSampler``
(isotropic, MVG, GMM) uses both; ``FlowSampler`` (the learned prior) maps a draw of its base (a
mixture: both inputs; N(0, I): ``noise`` alone) through its network; ``SecondStageSampler`` (the
two-stage VAE) maps ``noise`` through its decoder and ignores ``u``. ``ZGenerator`` wraps a generator in
the contract torch-fidelity expects from a generative model (one standard normal input, uint8 RGB output).

Sampling temperature tau (beyond the paper; ``density.temperature``): every sampler uses tau * noise
instead of noise, i.e. noise ~ N(0, tau^2 I). For a mixture that is each covariance x tau^2 (N(0, tau^2 I)
for the isotropic sampler), folded into the Cholesky factors; for the networks a multiplication in front.
tau < 1 trades diversity for typicality (Kingma & Dhariwal 2018, Glow; Brock et al. 2019, the truncation
trick). tau = 1 leaves every sampler exactly as without a temperature (no multiplication at all).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from eae.export.runtime import iter_inputs
from eae.models.networks import Decoder
from eae.sampling.density import FlowDensity, NetworkDensity, SecondStage, check_temperature
from eae.sampling.mixture import Mixture


def _tempered(noise: torch.Tensor, temperature: float) -> torch.Tensor:
    return noise if temperature == 1.0 else noise * temperature


class MixtureSampler(nn.Module):
    """Latents from a Gaussian mixture, driven by explicit randomness:

        c = #{ j < K-1 : u >= cumsum(weights)_j }      (inverse CDF of the component weights)
        z = means[c] + L[c] @ noise                     (L = Cholesky factor of covariances[c])

    with noise [N, d] ~ N(0, I) and u [N] ~ U[0, 1). Taking the randomness as
    inputs keeps the ONNX graph deterministic and lets any caller reproduce it. With a temperature
    tau, L is tau x the Cholesky factor (covariances x tau^2), computed in float64.
    """

    def __init__(self, mixture: Mixture, temperature: float = 1.0):
        super().__init__()
        w = np.asarray(mixture.weights, np.float64)
        chol = mixture.cholesky()
        if temperature != 1.0:
            chol = chol * check_temperature(temperature, "MixtureSampler")
        self.register_buffer("thresholds", torch.tensor(np.cumsum(w / w.sum())[:-1], dtype=torch.float32))
        self.register_buffer("means", torch.tensor(mixture.means, dtype=torch.float32))
        self.register_buffer("chol", torch.tensor(chol, dtype=torch.float32))

    def forward(self, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        component = (u.unsqueeze(1) >= self.thresholds.unsqueeze(0)).sum(dim=1)
        z = torch.matmul(self.chol[component], noise.unsqueeze(-1)).squeeze(-1)
        return z + self.means[component]

    @property
    def noise_dim(self) -> int:
        return self.means.shape[1]


def _state_dict(network: NetworkDensity) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in network.arrays.items()}


class SecondStageSampler(nn.Module):
    """Codes from the two-stage VAE's second stage: z = D2(tau * noise), noise [N, k] ~ N(0, I) with k
    its latent size; ``u`` is accepted for the common (noise, u) contract and not used."""

    def __init__(self, second_stage: SecondStage, temperature: float = 1.0):
        super().__init__()
        from eae.models.objectives.vae import SecondStageVAE

        cfg = second_stage.config
        model = SecondStageVAE(cfg["dim"], cfg["latent_dim"], cfg["hidden"], cfg["layers"])
        model.load_state_dict(_state_dict(second_stage))
        self.decoder = model.decoder.eval()
        self._noise_dim = int(cfg["latent_dim"])
        self.temperature = check_temperature(temperature, "SecondStageSampler")

    @property
    def noise_dim(self) -> int:
        return self._noise_dim

    def forward(self, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.decoder(_tempered(noise, self.temperature))


class FlowSampler(nn.Module):
    """Codes from the learned prior (beyond the paper): z = f^-1(y), f the fitted RealNVP flow
    (``eae.sampling.flow``), feed-forward through its coupling layers, with y drawn from its base: a
    ``MixtureSampler`` of its base mixture (``u`` picks the component; temperature: covariances x tau^2),
    or y = tau * noise for the N(0, I) base (``u`` accepted for the common contract and not used)."""

    def __init__(self, flow: FlowDensity, temperature: float = 1.0):
        super().__init__()
        from eae.sampling.flow import RealNVP

        self.flow = RealNVP(**flow.config["model"])
        self.flow.load_state_dict(_state_dict(flow))
        self.flow.eval()
        base = self.flow.base_mixture()
        self.base = MixtureSampler(base, temperature) if base is not None else None
        self.temperature = check_temperature(temperature, "FlowSampler")

    @property
    def noise_dim(self) -> int:
        return self.flow.config["dim"]

    def forward(self, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        y = self.base(noise, u) if self.base is not None else _tempered(noise, self.temperature)
        return self.flow(y)


def make_sampler(density: Mixture | NetworkDensity, temperature: float = 1.0) -> nn.Module:
    if isinstance(density, Mixture):
        return MixtureSampler(density, temperature)
    if isinstance(density, FlowDensity):
        return FlowSampler(density, temperature)
    return SecondStageSampler(density, temperature)


class Generator(nn.Module):
    """(noise, u) -> images [N, C, H, W] in [0, 1]: a sampler (``make_sampler``, at sampling temperature
    ``temperature``) and the decoder (baked: plain weights, eval mode)."""

    def __init__(self, density: Mixture | NetworkDensity, decoder: Decoder, temperature: float = 1.0):
        super().__init__()
        self.sampler = make_sampler(density, temperature)
        self.decoder = decoder.baked()

    @property
    def noise_dim(self) -> int:
        """Columns of ``noise`` (the latent size, or the second stage's latent size)."""
        return self.sampler.noise_dim

    def forward(self, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.sampler(noise, u))


def standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) = (1 + erf(x / sqrt(2))) / 2, the standard normal CDF (exported to ONNX as Erf)."""
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class ZGenerator(nn.Module):
    """A generator in torch-fidelity's contract: ``z`` float32 [N, noise_dim + 1] of independent
    standard normals -> uint8 [N, 3, H, W]. The first noise_dim columns are the generator's ``noise``;
    the last one picks the mixture component through the standard normal CDF,

        u = Phi(z_last) = (1 + erf(z_last / sqrt(2))) / 2        (~ U(0, 1) when z_last ~ N(0, 1))

    (the flow and second-stage samplers ignore it). Pixels are quantised like ``eae.export.runtime.to_uint8_nhwc``:
    round(255 * x) (half to even), clipped to [0, 255]; a grayscale channel is repeated to RGB.
    """

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    @property
    def z_size(self) -> int:
        return self.generator.noise_dim + 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        noise, z_last = z[:, :-1], z[:, -1]
        images = self.generator(noise, standard_normal_cdf(z_last))
        pixels = torch.clamp(torch.round(images * 255.0), 0.0, 255.0).to(torch.uint8)
        return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


def generated_batches(generator: Generator, n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """n images from the generator in batches, with the same inputs the ONNX generator would get
    from ``eae.export.runtime.draw_inputs(n, d, seed)`` (drawn batch by batch); runs on the generator's device."""
    device = next(generator.decoder.parameters()).device
    generator.eval()
    for noise, u in iter_inputs(n, generator.noise_dim, seed, batch_size):  # memory flat in n
        with torch.no_grad():
            yield generator(torch.from_numpy(noise).to(device), torch.from_numpy(u).to(device))
