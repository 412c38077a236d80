"""Training-step cost: an EAE step vs a plain AE step (same model, same batch), and images/s.

    python benchmarks/train_step.py [--arch celeba|mnist|digits] [--device cpu|cuda] [--steps 20] [--blocks 5]

Prints ms per step for both, the entropy term's cost as a fraction of a plain AE step, and
training images/s, measured in one run (interleaved blocks, median of blocks) so machine load
affects both alike. Goal: entropy term <= 5 % of a plain step on the paper's CelebA
architecture at batch 100.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _results import add_json_argument, row, write

from eae.models.entropy import kl_entropy
from eae.models.networks import ArchConfig
from eae.models.objectives.base import reconstruction_loss
from eae.models.objectives.registry import build_objective
from eae.training.loop import adam

ARCHS = {
    "digits": ArchConfig((1, 16, 16), 8, (32, 64, 128), (128, 64, 32), 4),
    "mnist": ArchConfig((1, 32, 32), 16, (128, 256, 512, 1024), (1024, 512, 256), 4),
    "celeba": ArchConfig((3, 64, 64), 64, (128, 256, 512, 1024), (1024, 512, 256, 128), 5),
}


def step(model, opt, x, beta):
    z, x_hat = model(x)
    loss = reconstruction_loss(x_hat, x)
    if beta:
        loss = loss - beta * kl_entropy(z)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def time_block(model, opt, x, beta, steps, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step(model, opt, x, beta)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="celeba")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="steps of each variant before timing")
    add_json_argument(ap)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = ARCHS[args.arch]
    # The paper's CelebA EAE has a spectrally normalised decoder.
    model = build_objective("eae", cfg, {"entropy_weight": 0.05, "spectral_norm": args.arch == "celeba"}).to(device)
    opt = adam(model.parameters(), lr=1e-4)
    x = torch.rand(args.batch, *cfg.image_shape, device=device)
    for beta in (0.0, 0.05):  # warm-up
        time_block(model, opt, x, beta, args.warmup, device)
    plain, eae = [], []
    for _ in range(args.blocks):
        plain.append(time_block(model, opt, x, 0.0, args.steps, device))
        eae.append(time_block(model, opt, x, 0.05, args.steps, device))
    p, e = statistics.median(plain), statistics.median(eae)
    z = torch.randn(args.batch, cfg.latent_dim, device=device, requires_grad=True)
    t = time.perf_counter()
    for _ in range(200):
        kl_entropy(z).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    alone = (time.perf_counter() - t) / 200
    print(f"device {device}, arch {args.arch}, batch {args.batch}, threads {torch.get_num_threads()}")
    print(f"plain AE step      {p * 1e3:8.2f} ms")
    print(f"EAE step           {e * 1e3:8.2f} ms")
    print(f"kl_entropy fwd+bwd {alone * 1e3:8.3f} ms")
    print(
        f"ratio EAE/AE       {e / p:8.3f}  (entropy term overhead {100 * (e / p - 1):+.1f} %, "
        f"isolated {100 * alone / p:.1f} % of a plain step)"
    )
    print(f"throughput         {args.batch / e:8.1f} training images/s (EAE step)")
    per_block = [100 * (a / b - 1) for a, b in zip(eae, plain)]
    write(
        args.json,
        "train_step",
        [
            row(
                f"entropy term overhead, {args.arch} step (batch {args.batch}, {device.type})",
                100 * (e / p - 1),
                "%",
                ("<=", 5.0),
                (min(per_block), max(per_block)),
                {
                    "plain_ms": p * 1e3,
                    "eae_ms": e * 1e3,
                    "entropy_alone_ms": alone * 1e3,
                    "images_per_s": args.batch / e,
                    "threads": torch.get_num_threads(),
                },
            )
        ],
    )


if __name__ == "__main__":
    main()
