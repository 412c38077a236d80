"""Images/s of the ONNX generator on onnxruntime (CPU) vs the same sampler + decoder in torch eager.

    python benchmarks/onnx_generator.py [--models models] [--threads 0] [--seconds 2]

Needs a completed `dvc repro` (models/eae.pt, models/density.npz, models/generator.onnx).
Both run in this process on the same inputs, alternating, with the same thread count;
prints images/s for each and the ratio at batch 1 and 64, plus file size and session load time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.density import load_densities
from eae.generator import Generator as TorchGenerator
from eae.runtime import Generator, draw_inputs


def rate(fn, batch: int, seconds: float) -> float:
    """Images per second: median over 5 timed rounds of about seconds/5 each."""
    fn()  # warm-up
    rounds = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            fn()
            n += batch
        rounds.append(n / (time.perf_counter() - start))
    return statistics.median(rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="models")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores, for both runtimes")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = ap.parse_args()
    models = Path(args.models)
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)

    start = time.perf_counter()
    onnx_gen = Generator(models / "generator.onnx", device="cpu", threads=threads)
    load_s = time.perf_counter() - start
    card = json.loads((models / "generator.json").read_text())
    ckpt = load_checkpoint(models / "eae.pt")
    torch_gen = TorchGenerator(load_densities(models / "density.npz")[card["sampler"]],
                               model_from_checkpoint(ckpt).decoder).eval()

    print(f"generator.onnx: {card['bytes'] / 1024:.1f} kB, session load {load_s * 1e3:.1f} ms, "
          f"providers {onnx_gen.providers}, threads {threads}, torch {torch.__version__}")
    for batch in (1, 64):
        noise, u = draw_inputs(batch, onnx_gen.latent_dim, seed=0)
        tn, tu = torch.from_numpy(noise), torch.from_numpy(u)

        def run_torch():
            with torch.inference_mode():
                torch_gen(tn, tu)

        ort_rate = rate(lambda: onnx_gen.generate(noise, u), batch, args.seconds)
        torch_rate = rate(run_torch, batch, args.seconds)
        print(f"batch {batch:3d}: onnxruntime {ort_rate:10.0f} img/s | torch eager {torch_rate:10.0f} img/s | "
              f"ratio {ort_rate / torch_rate:5.2f}x")


if __name__ == "__main__":
    main()
