"""Stage report: reports/index.html, self-contained (all images embedded)."""

from __future__ import annotations

import torch

from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.data import read_split
from eae.density import SAMPLERS, load_densities
from eae.evaluation import generated_batches
from eae.generator import Generator
from eae.io import read_json, write_bytes
from eae.runtime import Generator as OnnxGenerator
from eae.report import figure_data_uri, image_grid, png_data_uri, render_report, training_curves
from eae.train import reconstruct
from pipelines._stage import CHECKPOINT, DENSITY, FID, GENERATOR_ONNX, PREPARED, REPORT, log, run
from pipelines.config import load_params


def main() -> None:
    p = load_params()
    n = p.report.n_images
    ckpt = load_checkpoint(CHECKPOINT)
    model = model_from_checkpoint(ckpt)
    densities = load_densities(DENSITY)
    scale = max(1, 64 // model.cfg.image_shape[1])
    grids = {}
    for name in SAMPLERS:
        images = next(iter(generated_batches(Generator(densities[name], model.decoder), n, n, p.seed)))
        grids[name] = png_data_uri(image_grid(images.numpy()), scale)
    onnx_gen = OnnxGenerator(GENERATOR_ONNX, device="cpu")
    onnx_grid = png_data_uri(image_grid(onnx_gen.sample(n, seed=p.seed).transpose(0, 3, 1, 2)), scale)
    test = torch.from_numpy(read_split(PREPARED, "test").images[:n])
    metrics = {k: v for k, v in ckpt["metrics"].items() if k != "history"}
    html = render_report({
        "dataset": ckpt["dataset"],
        "entropy_weight": ckpt["params"]["entropy_weight"],
        "latent_dim": model.cfg.latent_dim,
        "epochs": metrics.get("epochs"),
        "seed": ckpt["params"]["seed"],
        "fid": read_json(FID),
        "samplers": SAMPLERS,
        "grids": grids,
        "originals": png_data_uri(image_grid(test.numpy()), scale),
        "reconstructions": png_data_uri(image_grid(reconstruct(model, test).numpy()), scale),
        "curves": figure_data_uri(training_curves(ckpt["metrics"]["history"])),
        "train_metrics": metrics,
        "card": onnx_gen.card,
        "onnx_grid": onnx_grid,
    })
    write_bytes(REPORT, html.encode())
    log.info("wrote %s (%.0f kB)", REPORT, len(html) / 1024)


if __name__ == "__main__":
    run(main)
