"""Images/s of the ONNX generator on onnxruntime (CPU) vs the same sampler + decoder in torch eager.

    python benchmarks/onnx_generator.py [--models DIR] [--threads 0] [--seconds 3] [--batches 1 64 1000]

With ``--models`` (after ``dvc repro``: models/eae.pt, models/density.npz, generator.onnx) the exported
generator of the run is measured; without it, the default digits network (random weights: the speed
does not depend on them) with a 10-component GMM is exported to a temporary folder by the export
stage's own function. Both runtimes run in this process on the same inputs, with the same thread
count, in interleaved rounds: the ratio onnxruntime / torch per batch size is the median of the
rounds' ratios, with their spread. Goal: >= 1.5x at every batch size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import add_json_argument, row, write

from eae.export.onnx import export_onnx
from eae.export.runtime import Generator, draw_inputs
from eae.models.networks import ArchConfig, Decoder
from eae.sampling.density import fit_gmm, load_samplers
from eae.sampling.generator import Generator as TorchGenerator

GOAL = 1.5
DIGITS = ArchConfig((1, 16, 16), 8, (32, 64, 128), (128, 64, 32), 4)


def fixture_generator(folder: Path) -> TorchGenerator:
    """The default digits decoder (random weights, eval-mode BatchNorm statistics from a few batches)
    and a 10-component GMM, exported like the export stage does."""
    from eae.export.card import make_card
    from eae.io import write_json

    torch.manual_seed(0)
    decoder = Decoder(DIGITS)
    with torch.no_grad():
        for _ in range(5):
            decoder(torch.randn(100, DIGITS.latent_dim))  # running statistics, as after training
    decoder.eval()
    codes = np.random.default_rng(0).standard_normal((2000, DIGITS.latent_dim)) * np.linspace(0.5, 1.5, 8)
    torch_gen = TorchGenerator(fit_gmm(codes, 10, seed=0), decoder).eval()
    meta = {"latent_dim": DIGITS.latent_dim, "image_shape": json.dumps(list(DIGITS.image_shape)), "sampler": "gmm"}
    export_onnx(
        torch_gen, (torch.randn(2, DIGITS.latent_dim), torch.rand(2)), ["noise", "u"], folder / "generator.onnx", meta
    )
    export_onnx(decoder.baked(), (torch.randn(2, DIGITS.latent_dim),), ["latent"], folder / "decoder.onnx", meta)
    card = make_card(
        folder / "generator.onnx",
        folder / "decoder.onnx",
        latent_dim=DIGITS.latent_dim,
        image_shape=list(DIGITS.image_shape),
        sampler="gmm",
        n_components=10,
        dataset="fixture",
        opset=18,
        training={},
        evaluation={},
    )
    write_json(folder / "generator.json", card)
    return torch_gen


def run_generator(models: Path) -> TorchGenerator:
    from eae.training.checkpoint import load_checkpoint, model_from_checkpoint

    card = json.loads((models / "generator.json").read_text())
    density = load_samplers(models / "density.npz")[card["sampler"]]
    return TorchGenerator(density, model_from_checkpoint(load_checkpoint(models / "eae.pt")).decoder).eval()


def rounds_of(fns: dict, batch: int, seconds: float, rounds: int = 7) -> dict[str, list[float]]:
    """Images/s of each function per round, every round running each function in turn."""
    for fn in fns.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while n == 0 or time.perf_counter() - start < seconds / rounds / len(fns):
                fn()
                n += batch
            rates[name].append(n / (time.perf_counter() - start))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="a models/ folder of a completed run (default: an exported fixture)")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores, for both runtimes")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per batch size and runtime")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1000])
    add_json_argument(ap)
    args = ap.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.models) if args.models else Path(tmp)
        torch_gen = run_generator(folder) if args.models else fixture_generator(folder)
        start = time.perf_counter()
        onnx_gen = Generator(folder / "generator.onnx", device="cpu", threads=threads)
        load_s = time.perf_counter() - start
        size_kb = (folder / "generator.onnx").stat().st_size / 1024
        print(
            f"generator.onnx ({'run' if args.models else 'fixture'}): {size_kb:.1f} kB, session load "
            f"{load_s * 1e3:.1f} ms, providers {onnx_gen.providers}, threads {threads}, torch {torch.__version__}"
        )
        rows = []
        for batch in args.batches:
            noise, u = draw_inputs(batch, onnx_gen.noise_dim, seed=0)
            tn, tu = torch.from_numpy(noise), torch.from_numpy(u)

            def run_torch(tn=tn, tu=tu):
                with torch.inference_mode():
                    torch_gen(tn, tu)

            def run_onnx(noise=noise, u=u):
                onnx_gen.generate(noise, u)

            rates = rounds_of({"onnx": run_onnx, "torch": run_torch}, batch, args.seconds)
            ratios = [a / b for a, b in zip(rates["onnx"], rates["torch"])]
            ratio = statistics.median(ratios)
            print(
                f"batch {batch:4d}: onnxruntime {statistics.median(rates['onnx']):9.0f} img/s | torch eager "
                f"{statistics.median(rates['torch']):9.0f} img/s | ratio {ratio:5.2f}x "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
            )
            rows.append(
                row(
                    f"ONNX generator / torch eager, batch {batch}",
                    ratio,
                    "x",
                    (">=", GOAL),
                    (min(ratios), max(ratios)),
                    {
                        "onnx_img_s": statistics.median(rates["onnx"]),
                        "torch_img_s": statistics.median(rates["torch"]),
                        "threads": threads,
                    },
                )
            )
    write(args.json, "onnx_generator", rows)


if __name__ == "__main__":
    main()
