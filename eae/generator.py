"""The deployable generator: a sampler + the decoder in one torch module, and its ONNX export.

Samplers map explicit randomness ``(noise [N, k], u [N])`` to codes [N, d]: ``MixtureSampler``
(isotropic, MVG, GMM) uses both; ``SecondStageSampler`` (the two-stage VAE) decodes ``noise``
with the second-stage VAE and ignores ``u``. ``ZGenerator`` wraps a generator in the contract
torch-fidelity expects from a generative model (one standard normal input, uint8 RGB output).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

import eae
from eae.density import Mixture, SecondStage
from eae.errors import EAEError
from eae.runtime import iter_inputs
from eae.io import atomic_path
from eae.networks import Decoder


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
        from eae.objectives.vae import SecondStageVAE

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

    (the second-stage sampler ignores it). Pixels are quantised like ``eae.runtime.to_uint8_nhwc``:
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


def image_metadata(channels: int, uint8: bool) -> dict[str, str]:
    """ONNX's image metadata (onnx docs/MetadataProps.md) for an ``images`` output with ``channels``
    channels: float pixels in [0, 1] (``uint8=False``) or 8-bit values (``uint8=True``), sRGB like
    the training images."""
    formats = {1: "Gray8", 3: "Rgb8"}
    if channels not in formats:
        raise EAEError(f"images with {channels} channels have no ONNX bitmap pixel format (1 or 3 expected)")
    return {"Image.BitmapPixelFormat": formats[channels], "Image.ColorSpaceGamma": "SRGB",
            "Image.NominalPixelRange": "NominalRange_0_255" if uint8 else "Normalized_0_1"}


def _export(module: nn.Module, args: tuple, path: Path, input_names: list[str], opset: int) -> None:
    batch = torch.export.Dim("N", min=1)
    dynamic = tuple({0: batch} for _ in input_names)
    with warnings.catch_warnings():
        # Both inputs share the batch dimension N; torch warns that it merged the names.
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape constraints")
        program = torch.onnx.export(module, args, dynamo=True, input_names=input_names, output_names=["images"],
                                    dynamic_shapes=dynamic, opset_version=opset, external_data=False,
                                    verbose=False)
    program.save(str(path))


# ONNX ModelProto fields: who wrote the file, and the version of its input/output contract (bumped
# when the inputs or outputs change meaning; apps can refuse a version they do not know).
PRODUCER = "eae"
MODEL_VERSION = 1
IMAGE_DIMS = ("DATA_BATCH", "DATA_CHANNEL", "DATA_FEATURE", "DATA_FEATURE")


def export_onnx(module: nn.Module, example_inputs: tuple[torch.Tensor, ...], input_names: list[str],
                path: str | Path, metadata: dict[str, str], opset: int = 18, atol: float = 1e-4,
                doc_string: str = "", model_version: int = MODEL_VERSION) -> float:
    """Export ``module`` (moved to CPU, eval mode; bake parametrizations first) to ONNX with a dynamic batch,
    attach ``metadata`` as metadata_props, check it, and verify onnxruntime agrees with torch on
    batch sizes 1 and 7 within ``atol``. Writes atomically; returns the largest abs difference.

    ONNX conventions: producer_name/producer_version name this package, ``model_version`` and
    ``doc_string`` are set, and the output is denoted an IMAGE [DATA_BATCH, DATA_CHANNEL,
    DATA_FEATURE, DATA_FEATURE] (onnx docs/TypeDenotation.md), which the ``Image.*`` keys of
    ``image_metadata`` describe."""
    import onnx

    module = module.cpu().eval()
    path = Path(path)
    with atomic_path(path) as tmp:
        with torch.no_grad():
            _export(module, example_inputs, tmp, input_names, opset)
        model = onnx.load(str(tmp))
        model.producer_name, model.producer_version = PRODUCER, eae.__version__
        model.model_version, model.doc_string = model_version, doc_string
        output_type = model.graph.output[0].type
        output_type.denotation = "IMAGE"
        for dim, denotation in zip(output_type.tensor_type.shape.dim, IMAGE_DIMS):
            dim.denotation = denotation
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        max_diff = max(parity(module, tmp, example_inputs, input_names, n) for n in (1, 7))
        if not max_diff <= atol:  # also catches NaN, which compares False with everything
            raise EAEError(f"ONNX export of {path.name}: onnxruntime and torch differ by {max_diff:.2e} > {atol:.0e}")
    return max_diff


def export_z_onnx(generator: Generator, path: str | Path, metadata: dict[str, str], opset: int = 18,
                  about: str = "EAE generator") -> float:
    """Export ``ZGenerator(generator)`` (torch-fidelity's contract) with ``metadata`` (the generator's
    keys; inputs, outputs, image_shape and the Image.* keys are replaced by the z contract's).
    torch and onnxruntime must agree within one 8-bit level (rounding at a .5 boundary may differ)."""
    module = ZGenerator(generator)
    z_size = module.z_size
    _, h, w = json.loads(metadata["image_shape"])
    inputs = f"z float32 [N, {z_size}] ~ N(0, I); columns 1..{z_size - 1} are the noise, the last gives u = Phi(z_last)"
    outputs = "images uint8 [N, 3, H, W] = round(255 x), grayscale repeated to RGB"
    meta = {**metadata, "inputs": inputs, "outputs": outputs, "image_shape": json.dumps([3, h, w]),
            **image_metadata(3, uint8=True)}
    return export_onnx(module, (torch.randn(2, z_size),), ["z"], path, meta, opset=opset, atol=1.0,
                       doc_string=f"{about}, in torch-fidelity's generator contract: {inputs} -> {outputs}")


def parity(module: nn.Module, onnx_path: str | Path, example_inputs: tuple[torch.Tensor, ...],
           input_names: list[str], batch: int, seed: int = 0) -> float:
    """Largest |torch - onnxruntime| on random inputs shaped like ``example_inputs`` with batch ``batch``;
    an EAEError when either output holds NaN or infinity (a broken density or weights would otherwise
    export a generator of black images: NaN - NaN is NaN, and NaN > atol is False)."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    inputs = []
    for x in example_inputs:
        shape = (batch, *x.shape[1:])
        # u-like inputs (1-D) are uniform in [0, 1); the rest standard normal.
        inputs.append(torch.rand(shape, generator=g) if x.dim() == 1 else torch.randn(shape, generator=g))
    with torch.no_grad():
        expected = module(*inputs).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: x.numpy() for name, x in zip(input_names, inputs)})[0]
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise EAEError(f"ONNX output {got.dtype} {got.shape} != torch {expected.dtype} {expected.shape}")
    for what, out in (("torch", expected), ("onnxruntime", got)):
        if not np.isfinite(out).all():
            raise EAEError(f"ONNX export of {Path(onnx_path).name}: the {what} output holds NaN or infinite values "
                           "(non-finite density parameters or weights)")
    return float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())  # no uint8 wrap-around


def generated_batches(generator: Generator, n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """n images from the generator in batches, with the same inputs the ONNX generator would get
    from ``eae.runtime.draw_inputs(n, d, seed)`` (drawn batch by batch); runs on the generator's device."""
    device = next(generator.decoder.parameters()).device
    generator.eval()
    for noise, u in iter_inputs(n, generator.noise_dim, seed, batch_size):  # memory flat in n
        with torch.no_grad():
            yield generator(torch.from_numpy(noise).to(device), torch.from_numpy(u).to(device))
