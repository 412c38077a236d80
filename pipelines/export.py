"""Stage export: sampler + decoder -> models/generator.onnx; decoder alone -> models/decoder.onnx;
the generator in torch-fidelity's contract -> models/generator_z.onnx; fixed inputs and the images they give,
for checking ports to other runtimes -> models/test_vectors.json (``export.test_vectors`` draws); the model card
models/generator.json (shapes, objective and training params, the FIDs from evaluate, sha256s)
and, rendered from the same card, models/README.md (Hugging Face model-card format).

The outputs are written as one set (``eae.io.atomic_files``): a failed or killed export leaves the
previous set untouched, never a new generator beside an old card. A density with NaN or infinite
parameters, one that does not fit the model, or an implausible one (``check_density``) is refused
before anything is exported, and so are scores (reports/fid.json) of another checkpoint or density.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from eae.errors import EAEError
from eae.evaluation.results import read_results
from eae.export.card import card_path, make_card, sha256_file
from eae.export.onnx import check_not_saturated, export_onnx, export_z_onnx, image_metadata
from eae.export.readme import render_model_card
from eae.export.vectors import make_test_vectors
from eae.io import atomic_files, read_json, write_json
from eae.models.objectives.base import Objective
from eae.sampling.density import FLOW, FlowDensity, Mixture, check_plausible, load_samplers, load_temperature
from eae.sampling.generator import Generator
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint, require
from pipelines._stage import (
    CHECKPOINT,
    DECODER_ONNX,
    DENSITY,
    FID,
    GENERATOR_ONNX,
    GENERATOR_Z_ONNX,
    MODEL_README,
    TEST_VECTORS,
    log,
    run,
)
from pipelines.config import Params, load_params

U_USED = "u float32 [N] ~ U[0, 1) picks the mixture component (for the flow: of its base)"
U_UNUSED = "u float32 [N] is accepted and not used (the {} sampler has no components)"


def check_density(name: str, density, ckpt: dict, samplers: dict) -> None:
    """A fitted mixture must be plausible for the codes it was fitted to
    (``eae.sampling.density.check_plausible``): the training codes' statistics the checkpoint records,
    or, for a checkpoint written before it recorded them, the MVG of the same file (the codes' mean and
    covariance). The isotropic prior is not fitted, the second stage not a mixture."""
    if not isinstance(density, Mixture) or name == "isotropic":
        return
    stats = ckpt.get("code_stats")
    if isinstance(stats, dict):
        mean, std = stats.get("mean"), stats.get("std")
    elif isinstance(samplers.get("mvg"), Mixture):
        mvg = samplers["mvg"]
        mean, std = mvg.means[0], np.sqrt(np.clip(np.diagonal(mvg.covariances[0]), 0, None))
    else:
        return
    check_plausible(density, mean, std, f"{DENSITY} ({name})")


def check_scores(path: str = FID) -> None:
    """The scores the card will carry must be those of this checkpoint and density."""
    problem = read_results(path).provenance_problem(sha256_file(CHECKPOINT), sha256_file(DENSITY))
    if problem:
        raise EAEError(f"{path}: {problem}: run the evaluate stage first (dvc repro evaluate)")


@dataclass
class Description:
    """What the ONNX files and the card say about the generator (and the decoder alone)."""

    about: str  # one line: objective, sampler, temperature, dataset
    metadata: dict  # the generator's ONNX metadata
    decoder_meta: dict  # the decoder's
    n_components: int
    u_meaning: str
    temperature: float


def main() -> None:
    p = load_params()
    ckpt, model, samplers = load_inputs()
    density, temperature = chosen_density(p, ckpt, model, samplers)
    generator = build_generator(p, density, model, temperature)
    desc = describe(p, ckpt, model, density, temperature, generator.noise_dim)
    card = write_exports(p, ckpt, model, generator, desc)
    log.info(
        "wrote %s (sha256 %s, %.1f kB), %s, %s, %s, %s and the model card %s",
        GENERATOR_ONNX,
        card["sha256"][:12],
        card["bytes"] / 1024,
        DECODER_ONNX,
        GENERATOR_Z_ONNX,
        TEST_VECTORS,
        card_path(GENERATOR_ONNX),
        MODEL_README,
    )


def load_inputs() -> tuple[dict, Objective, dict]:
    """The checkpoint (with what the card needs of it), its model, the fitted samplers; the scores of
    both must be in reports/fid.json."""
    ckpt = load_checkpoint(CHECKPOINT)
    require(ckpt, "dataset", "data_hash", "params.seed", "params.model", "params.train", "metrics")
    model = model_from_checkpoint(ckpt)
    samplers = load_samplers(DENSITY)
    check_scores()
    return ckpt, model, samplers


def chosen_density(p: Params, ckpt: dict, model: Objective, samplers: dict) -> tuple[object, float]:
    """``export.sampler``'s density, checked against the model (and its temperature)."""
    if p.export.sampler not in samplers:
        raise EAEError(
            f"export.sampler {p.export.sampler!r}: {DENSITY} has no such sampler (has {', '.join(samplers)})"
        )
    density = samplers[p.export.sampler]
    temperature = load_temperature(DENSITY)
    d = model.arch.latent_dim
    if density.dim != d:
        raise EAEError(
            f"{DENSITY} ({p.export.sampler}) samples {density.dim}-dimensional codes but {CHECKPOINT} has "
            f"latent_dim {d}: the density was fitted to another model (rerun fit_density)"
        )
    check_density(p.export.sampler, density, ckpt, samplers)
    return density, temperature


def build_generator(p: Params, density, model: Objective, temperature: float) -> Generator:
    """Sampler + decoder in one module, refused when they do not fit or saturate."""
    try:
        generator = Generator(density, model.decoder, temperature)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise EAEError(
            f"{DENSITY} ({p.export.sampler}) does not fit {CHECKPOINT}: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        ) from None
    check_not_saturated(generator, f"{DENSITY} ({p.export.sampler}) with {CHECKPOINT}")
    return generator


def describe(p: Params, ckpt: dict, model: Objective, density, temperature: float, k: int) -> Description:
    """The ONNX metadata of the generator (noise size ``k``) and of the decoder alone."""
    n_components = (
        len(density.weights)
        if isinstance(density, Mixture)
        else density.components
        if isinstance(density, FlowDensity)
        else 0
    )
    u_meaning = U_USED if n_components else U_UNUSED.format(p.export.sampler)
    objective = ckpt["objective"]
    metadata = {
        "latent_dim": model.arch.latent_dim,
        "noise_dim": k,
        "image_shape": json.dumps(list(model.arch.image_shape)),
        "sampler": p.export.sampler,
        "n_components": n_components,
        "temperature": temperature,
        "dataset": ckpt["dataset"],
        "objective": objective["name"],
        "objective_weights": json.dumps(objective["weights"], sort_keys=True),
        "seed": ckpt["params"]["seed"],
        "inputs": f"noise float32 [N, {k}] ~ N(0, I); {u_meaning}",
        "outputs": "images float32 [N, C, H, W] in [0, 1]",
        **image_metadata(model.arch.image_shape[0], uint8=False),
    }
    if objective["name"] == "eae":
        metadata["entropy_weight"] = objective["weights"]["entropy_weight"]
    if p.export.sampler == FLOW:
        metadata["flow"] = json.dumps(density.config, sort_keys=True)
    tempered = f" at temperature {temperature:g}" if temperature != 1.0 else ""
    about = (
        f"{objective['name']} generator ({p.export.sampler} sampler{tempered} + decoder) trained on {ckpt['dataset']}"
    )
    decoder_meta = {
        key: v
        for key, v in metadata.items()
        if key not in ("sampler", "n_components", "temperature", "flow", "inputs", "noise_dim")
    }
    decoder_meta["inputs"] = "latent float32 [N, latent_dim]"
    return Description(about, metadata, decoder_meta, n_components, u_meaning, temperature)


def write_exports(p: Params, ckpt: dict, model: Objective, generator: Generator, desc: Description) -> dict:
    """Every output, as one set: it replaces the previous export only when all of it is written.
    Returns the card."""
    outputs = [GENERATOR_ONNX, DECODER_ONNX, GENERATOR_Z_ONNX, card_path(GENERATOR_ONNX), MODEL_README, TEST_VECTORS]
    with atomic_files(outputs) as (generator_onnx, decoder_onnx, z_onnx, card_file, readme, vectors):
        export_graphs(p, model, generator, desc, generator_onnx, decoder_onnx, z_onnx)
        write_json(vectors, make_test_vectors(generator_onnx, p.export.test_vectors, p.seed))
        card = write_card(
            p,
            ckpt,
            model,
            generator_onnx,
            decoder_onnx,
            z_onnx,
            card_file,
            generator.noise_dim,
            desc.n_components,
            desc.u_meaning,
            desc.temperature,
        )
        readme.write_text(render_model_card(card))
    return card


def export_graphs(
    p: Params, model: Objective, generator: Generator, desc: Description, generator_onnx, decoder_onnx, z_onnx
) -> None:
    """The generator, the decoder alone and the generator in torch-fidelity's contract, as ONNX graphs
    checked against torch."""
    k, d, metadata = generator.noise_dim, model.arch.latent_dim, desc.metadata
    diff = export_onnx(
        generator,
        (torch.randn(2, k), torch.rand(2)),
        ["noise", "u"],
        generator_onnx,
        metadata,
        opset=p.export.opset,
        atol=p.export.tolerance,
        doc_string=f"{desc.about}: {metadata['inputs']} -> {metadata['outputs']}",
    )
    log.info("exported %s (sampler %s), max |onnxruntime - torch| = %.2e", GENERATOR_ONNX, p.export.sampler, diff)
    diff = export_onnx(
        model.decoder.baked(),
        (torch.randn(2, d),),
        ["latent"],
        decoder_onnx,
        desc.decoder_meta,
        opset=p.export.opset,
        atol=p.export.tolerance,
        doc_string=f"decoder of the {desc.about}: latent float32 [N, {d}] -> images",
    )
    log.info("exported %s, max |onnxruntime - torch| = %.2e", DECODER_ONNX, diff)
    diff = export_z_onnx(generator, z_onnx, metadata, opset=p.export.opset, about=desc.about)
    log.info(
        "exported %s (torch-fidelity's contract, z size %d), max |onnxruntime - torch| = %.0f level",
        GENERATOR_Z_ONNX,
        k + 1,
        diff,
    )


def write_card(
    p,
    ckpt: dict,
    model,
    generator_onnx,
    decoder_onnx,
    z_onnx,
    card_file,
    k: int,
    n_components: int,
    u_meaning: str,
    temperature: float = 1.0,
) -> dict:
    """The model card of the staged generator and decoder (named as their final files)."""
    objective = ckpt["objective"]
    training = {
        "objective": objective,
        "seed": ckpt["params"]["seed"],
        "model": ckpt["params"]["model"],
        "train": ckpt["params"]["train"],
        "data_hash": ckpt["data_hash"],
        "metrics": {key: v for key, v in ckpt["metrics"].items() if key != "history"},
    }
    if objective["name"] == "eae":
        training["entropy_weight"] = objective["weights"]["entropy_weight"]
    card = make_card(
        generator_onnx,
        decoder_onnx,
        latent_dim=model.arch.latent_dim,
        noise_dim=k,
        image_shape=list(model.arch.image_shape),
        sampler=p.export.sampler,
        n_components=n_components,
        dataset=ckpt["dataset"],
        opset=p.export.opset,
        training=training,
        evaluation=read_json(FID),
        u_meaning=u_meaning,
        z_path=z_onnx,
        temperature=temperature,
    )
    write_json(card_file, card)
    return card


if __name__ == "__main__":
    run(main)
