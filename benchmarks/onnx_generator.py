"""Images/s of the ONNX generator on onnxruntime (CPU) vs the same sampler + decoder in torch eager.

    python benchmarks/onnx_generator.py [--models models] [--threads 0] [--seconds 3]

Needs a completed `dvc repro` (models/eae.pt, models/density.npz, models/generator.onnx).
All variants run in this process on the same inputs, in interleaved rounds (median of rounds),
with the same thread count:
  onnx          models/generator.onnx
  torch         torch eager (eae.generator.Generator)
Prints images/s and the ratio onnx / torch at batch 1 and 64, plus file size and session load time.
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


def interleaved_rates(fns: dict, batch: int, seconds: float, rounds: int = 7) -> dict[str, float]:
    """Images/s per function: median over rounds, each round running every function in turn."""
    for fn in fns.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / rounds / len(fns):
                fn()
                n += batch
            rates[name].append(n / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="models")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores, for both runtimes")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per batch size and variant")
    args = ap.parse_args()
    models = Path(args.models)
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)

    start = time.perf_counter()
    onnx_gen = Generator(models / "generator.onnx", device="cpu", threads=threads)
    load_s = time.perf_counter() - start
    card = json.loads((models / "generator.json").read_text())
    mixture = load_densities(models / "density.npz")[card["sampler"]]
    decoder = model_from_checkpoint(load_checkpoint(models / "eae.pt")).decoder
    torch_gen = TorchGenerator(mixture, decoder).eval()
    d = onnx_gen.latent_dim
    print(f"generator.onnx: {card['bytes'] / 1024:.1f} kB, session load {load_s * 1e3:.1f} ms, "
          f"providers {onnx_gen.providers}, threads {threads}, torch {torch.__version__}")
    for batch in (1, 64):
        noise, u = draw_inputs(batch, d, seed=0)
        tn, tu = torch.from_numpy(noise), torch.from_numpy(u)

        def run_torch():
            with torch.inference_mode():
                torch_gen(tn, tu)

        r = interleaved_rates({"onnx": lambda: onnx_gen.generate(noise, u), "torch": run_torch}, batch, args.seconds)
        print(f"batch {batch:3d}: onnxruntime {r['onnx']:8.0f} img/s | torch eager {r['torch']:8.0f} img/s | "
              f"ratio {r['onnx'] / r['torch']:5.2f}x")

if __name__ == "__main__":
    main()
