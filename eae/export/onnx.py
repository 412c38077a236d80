"""ONNX export of a torch module (the generator): metadata, ONNX's conventions and a parity check
against onnxruntime before the file is moved into place."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import eae
from eae.errors import EAEError, StaleArtifact
from eae.io import atomic_path
from eae.sampling.generator import Generator, ZGenerator


def image_metadata(channels: int, uint8: bool) -> dict[str, str]:
    """ONNX's image metadata (onnx docs/MetadataProps.md) for an ``images`` output with ``channels``
    channels: float pixels in [0, 1] (``uint8=False``) or 8-bit values (``uint8=True``), sRGB like
    the training images."""
    formats = {1: "Gray8", 3: "Rgb8"}
    if channels not in formats:
        raise EAEError(f"images with {channels} channels have no ONNX bitmap pixel format (1 or 3 expected)")
    return {
        "Image.BitmapPixelFormat": formats[channels],
        "Image.ColorSpaceGamma": "SRGB",
        "Image.NominalPixelRange": "NominalRange_0_255" if uint8 else "Normalized_0_1",
    }


def _export(module: nn.Module, args: tuple, path: Path, input_names: list[str], opset: int) -> None:
    batch = torch.export.Dim("N", min=1)
    dynamic = tuple({0: batch} for _ in input_names)
    with warnings.catch_warnings():
        # Both inputs share the batch dimension N; torch warns that it merged the names.
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape constraints")
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=input_names,
            output_names=["images"],
            dynamic_shapes=dynamic,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    program.save(str(path))


# ONNX ModelProto fields: who wrote the file, and the version of its input/output contract (bumped
# when the inputs or outputs change meaning; apps can refuse a version they do not know).
PRODUCER = "eae"
MODEL_VERSION = 1
IMAGE_DIMS = ("DATA_BATCH", "DATA_CHANNEL", "DATA_FEATURE", "DATA_FEATURE")


def export_onnx(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    input_names: list[str],
    path: str | Path,
    metadata: dict[str, str],
    opset: int = 18,
    atol: float = 1e-4,
    doc_string: str = "",
    model_version: int = MODEL_VERSION,
) -> float:
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
        written = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        if written != [opset]:  # torch.onnx keeps its own opset when it cannot convert to the one asked for
            raise EAEError(
                f"ONNX export of {path.name}: asked for opset {opset}, the exporter wrote opset "
                f"{', '.join(map(str, written)) or 'none'} (torch.onnx cannot convert this graph to {opset})"
            )
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        max_diff = max(parity(module, tmp, example_inputs, input_names, n) for n in (1, 7))
        if not max_diff <= atol:  # also catches NaN, which compares False with everything
            raise EAEError(f"ONNX export of {path.name}: onnxruntime and torch differ by {max_diff:.2e} > {atol:.0e}")
    return max_diff


def export_z_onnx(
    generator: Generator, path: str | Path, metadata: dict[str, str], opset: int = 18, about: str = "EAE generator"
) -> float:
    """Export ``ZGenerator(generator)`` (torch-fidelity's contract) with ``metadata`` (the generator's
    keys; inputs, outputs, image_shape and the Image.* keys are replaced by the z contract's).
    torch and onnxruntime must agree within one 8-bit level (rounding at a .5 boundary may differ)."""
    module = ZGenerator(generator)
    z_size = module.z_size
    _, h, w = json.loads(metadata["image_shape"])
    inputs = f"z float32 [N, {z_size}] ~ N(0, I); columns 1..{z_size - 1} are the noise, the last gives u = Phi(z_last)"
    outputs = "images uint8 [N, 3, H, W] = round(255 x), grayscale repeated to RGB"
    meta = {
        **metadata,
        "inputs": inputs,
        "outputs": outputs,
        "image_shape": json.dumps([3, h, w]),
        **image_metadata(3, uint8=True),
    }
    return export_onnx(
        module,
        (torch.randn(2, z_size),),
        ["z"],
        path,
        meta,
        opset=opset,
        atol=1.0,
        doc_string=f"{about}, in torch-fidelity's generator contract: {inputs} -> {outputs}",
    )


def parity(
    module: nn.Module,
    onnx_path: str | Path,
    example_inputs: tuple[torch.Tensor, ...],
    input_names: list[str],
    batch: int,
    seed: int = 0,
) -> float:
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
            raise EAEError(
                f"ONNX export of {Path(onnx_path).name}: the {what} output holds NaN or infinite values "
                "(non-finite density parameters or weights)"
            )
    return float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())  # no uint8 wrap-around


#: A generator whose sampled images have more than this share of pixels at 0 or 255 (8 bits) draws
#: saturated garbage: its latents lie far outside what the decoder was trained on (a density of absurd
#: scale). Trained digits generators have 0-5 %, near-binary data such as MNIST stays well below.
MAX_SATURATED_SHARE = 0.99


def check_not_saturated(generator: Generator, where: str, n: int = 256, seed: int = 0) -> float:
    """Decode ``n`` seeded samples of ``generator`` (torch, CPU) and refuse (EAEError naming ``where``) when
    more than MAX_SATURATED_SHARE of their 8-bit pixels are 0 or 255; returns that share."""
    from eae.export.runtime import draw_inputs

    noise, u = draw_inputs(n, generator.noise_dim, seed)
    with torch.no_grad():
        images = generator.cpu().eval()(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
    levels = np.clip(np.rint(np.nan_to_num(images, nan=0.0) * 255.0), 0, 255)
    share = float(np.isin(levels, (0.0, 255.0)).mean())
    if not share <= MAX_SATURATED_SHARE:
        raise StaleArtifact(
            f"{where}: {share:.1%} of the pixels of {n} sampled images are 0 or 255 (at most "
            f"{MAX_SATURATED_SHARE:.0%} expected): the sampler's latents lie far outside what the decoder "
            "was trained on",
            "density",
        )
    return share
