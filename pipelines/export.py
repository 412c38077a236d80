"""Stage export: sampler + decoder -> models/generator.onnx; decoder alone -> models/decoder.onnx;
the model card models/generator.json (shapes, training params, the FIDs from evaluate, sha256)."""

from __future__ import annotations

import json

import torch

from eae.card import card_path, make_card
from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.density import load_densities
from eae.generator import Generator, export_onnx
from eae.io import read_json, write_json
from pipelines._stage import CHECKPOINT, DECODER_ONNX, DENSITY, FID, GENERATOR_ONNX, log, run
from pipelines.config import load_params


def main() -> None:
    p = load_params()
    ckpt = load_checkpoint(CHECKPOINT)
    model = model_from_checkpoint(ckpt)
    mixture = load_densities(DENSITY)[p.export.sampler]
    d = model.cfg.latent_dim
    metadata = {
        "latent_dim": d,
        "image_shape": json.dumps(list(model.cfg.image_shape)),
        "sampler": p.export.sampler,
        "n_components": len(mixture.weights),
        "dataset": ckpt["dataset"],
        "entropy_weight": ckpt["params"]["entropy_weight"],
        "seed": ckpt["params"]["seed"],
        "inputs": "noise float32 [N, latent_dim] ~ N(0, I); u float32 [N] ~ U[0, 1) picks the mixture component",
        "outputs": "images float32 [N, C, H, W] in [0, 1]",
    }
    generator = Generator(mixture, model.decoder)
    diff = export_onnx(generator, (torch.randn(2, d), torch.rand(2)), ["noise", "u"], GENERATOR_ONNX,
                       metadata, opset=p.export.opset, atol=p.export.tolerance)
    log.info("wrote %s (sampler %s), max |onnxruntime - torch| = %.2e", GENERATOR_ONNX, p.export.sampler, diff)
    decoder_meta = {k: v for k, v in metadata.items() if k not in ("sampler", "n_components", "inputs")}
    decoder_meta["inputs"] = "latent float32 [N, latent_dim]"
    diff = export_onnx(model.decoder.baked(), (torch.randn(2, d),), ["latent"], DECODER_ONNX, decoder_meta,
                       opset=p.export.opset, atol=p.export.tolerance)
    log.info("wrote %s, max |onnxruntime - torch| = %.2e", DECODER_ONNX, diff)

    training = {"entropy_weight": ckpt["params"]["entropy_weight"], "seed": ckpt["params"]["seed"],
                "model": ckpt["params"]["model"], "train": ckpt["params"]["train"],
                "data_hash": ckpt["data_hash"], "metrics": {k: v for k, v in ckpt["metrics"].items() if k != "history"}}
    card = make_card(GENERATOR_ONNX, DECODER_ONNX, latent_dim=d, image_shape=list(model.cfg.image_shape),
                     sampler=p.export.sampler, n_components=len(mixture.weights), dataset=ckpt["dataset"],
                     opset=p.export.opset, training=training, evaluation=read_json(FID))
    write_json(card_path(GENERATOR_ONNX), card)
    log.info("wrote %s (sha256 %s, %.1f kB)", card_path(GENERATOR_ONNX), card["sha256"][:12], card["bytes"] / 1024)

if __name__ == "__main__":
    run(main)
