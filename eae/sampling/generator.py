"""The generator: a sampler + the decoder in one torch module (its ONNX export: ``eae.export.onnx``).

Samplers map explicit randomness ``(noise [N, k], u [N])`` to codes [N, d]: ``MixtureSampler``
(isotropic, MVG, GMM) uses both; ``SecondStageSampler`` (the two-stage VAE) decodes ``noise``
with the second-stage VAE and ignores ``u``. ``ZGenerator`` wraps a generator in the contract
torch-fidelity expects from a generative model (one standard normal input, uint8 RGB output).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from eae.export.runtime import iter_inputs
from eae.models.networks import Decoder
from eae.sampling.density import Mixture, SecondStage


class MixtureSampler(nn.Module):
    """Latents from a Gaussian mixture, driven by explicit randomness:

        c = #{ j < K-1 : u >= cumsum(weights)_j }      (inverse CDF of the component weights)
        z = means[c] + L[c] @ noise                     (L = Cholesky factor of covariances[c])

    with noise [N, d] ~ N(0, I) and u [N] ~ U[0, 1). Taking the randomness as
    inputs keeps the ONNX graph deterministic and lets any caller reproduce it.
    """

    def __init__(self, mixture: Mixture):
        super().__init__()
        w = np.asarray(mixture.weights, np.float64)
        self.register_buffer("thresholds", torch.tensor(np.cumsum(w / w.sum())[:-1], dtype=torch.float32))
        self.register_buffer("means", torch.tensor(mixture.means, dtype=torch.float32))
        self.register_buffer("chol", torch.tensor(mixture.cholesky(), dtype=torch.float32))

    def forward(self, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        component = (u.unsqueeze(1) >= self.thresholds.unsqueeze(0)).sum(dim=1)
        z = torch.matmul(self.chol[component], noise.unsqueeze(-1)).squeeze(-1)
        return z + self.means[component]

    @property
    def noise_dim(self) -> int:
        return self.means.shape[1]


class SecondStageSampler(nn.Module):
    """Codes from the two-stage VAE's second stage: z = D2(noise), noise [N, k] ~ N(0, I) with k its
    latent size; ``u`` is accepted for the common (noise, u) contract and not used."""

    def __init__(self, second_stage: SecondStage):
        super().__init__()
        from eae.models.objectives.vae import SecondStageVAE

        cfg = second_stage.config
        model = SecondStageVAE(cfg["dim"], cfg["latent_dim"], cfg["hidden"], cfg["layers"])
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in second_stage.arrays.items()})
        self.decoder = model.decoder.eval()
        self._noise_dim = int(cfg["latent_dim"])

    @property
    def noise_dim(self) -> int:
        return self._noise_dim

    def forward(self, noise: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.decoder(noise)


def make_sampler(density: Mixture | SecondStage) -> nn.Module:
    return MixtureSampler(density) if isinstance(density, Mixture) else SecondStageSampler(density)


class Generator(nn.Module):
    """(noise, u) -> images [N, C, H, W] in [0, 1]: a sampler (``make_sampler``) and the decoder
    (baked: plain weights, eval mode)."""

    def __init__(self, density: Mixture | SecondStage, decoder: Decoder):
        super().__init__()
        self.sampler = make_sampler(density)
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

    (the second-stage sampler ignores it). Pixels are quantised like ``eae.export.runtime.to_uint8_nhwc``:
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
