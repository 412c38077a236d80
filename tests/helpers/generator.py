"""The tiny exported generator the export, runtime and model-card tests share (built once a session by the
``tiny_generator`` fixture of tests/conftest.py), and reference functions for checking it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eae.export.card import make_card
from eae.export.onnx import export_onnx, export_z_onnx, image_metadata
from eae.io import write_json
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.sampling.density import fit_gmm
from eae.sampling.generator import Generator

D = 3  # latent size
ARCH = ArchConfig((1, 8, 8), D, (8, 16), (16, 8))
METADATA = {
    "latent_dim": D,
    "noise_dim": D,
    "image_shape": "[1, 8, 8]",
    "sampler": "gmm",
    "dataset": "fixture",
    **image_metadata(1, uint8=False),
}


@dataclass(frozen=True)
class TinyGenerator:
    folder: Path  # generator.onnx, decoder.onnx, generator_z.onnx, generator.json
    torch_generator: Generator
    decoder: nn.Module  # the baked decoder decoder.onnx was exported from
    export_diff: float  # generator.onnx's largest |torch - onnxruntime| at export
    z_diff: float


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) in float64 (scipy's ndtr), the reference for the graph's erf-based CDF."""
    from scipy.special import ndtr

    return ndtr(np.asarray(x, np.float64))


def export_tiny_generator(out: Path) -> TinyGenerator:
    """An EAE with a spectrally normalised decoder (batch statistics from one forward pass), a 4-component
    GMM, and the export stage's set of files for them in ``out``."""
    torch.manual_seed(0)
    model = build_objective("eae", ARCH, {"entropy_weight": 0.1, "spectral_norm": True})
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    mix = fit_gmm(np.random.default_rng(0).standard_normal((300, D)) * [1, 2, 3], 4, seed=0)
    gen = Generator(mix, model.decoder).eval()
    diff = export_onnx(
        gen,
        (torch.randn(2, D), torch.rand(2)),
        ["noise", "u"],
        out / "generator.onnx",
        METADATA,
        doc_string="fixture generator",
    )
    decoder = model.decoder.baked()
    export_onnx(decoder, (torch.randn(2, D),), ["latent"], out / "decoder.onnx", METADATA)
    z_diff = export_z_onnx(gen, out / "generator_z.onnx", METADATA, about="fixture generator")
    write_json(out / "generator.json", card(out))
    return TinyGenerator(out, gen, decoder, diff, z_diff)


def card(out: Path, evaluation: dict | None = None, dataset: str = "fixture") -> dict:
    """The generator card of the files in ``out`` (as the export stage writes it)."""
    return make_card(
        out / "generator.onnx",
        out / "decoder.onnx",
        latent_dim=D,
        noise_dim=D,
        image_shape=[1, 8, 8],
        sampler="gmm",
        n_components=4,
        dataset=dataset,
        opset=18,
        training={
            "objective": {"name": "eae", "weights": {"entropy_weight": 0.1}},
            "seed": 0,
            "model": {"latent_dim": D},
            "train": {"epochs": 2},
            "data_hash": "abc123",
            "metrics": {"recon": 2.5},
        },
        evaluation={"gmm": 1.0} if evaluation is None else evaluation,
        z_path=out / "generator_z.onnx",
    )
