"""Training throughput of the EAE step under the speed options, measured side by side in one run.

    python benchmarks/train_variants.py [--arch celeba|mnist|digits] [--device cuda] [--batch 100]
                                        [--steps 20] [--rounds 3] [--epoch-images 162770] [--epochs 70]

Variants (each a fresh model with the same seed, interleaved rounds, median step time):
fp32; fp32 + channels_last; bf16 autocast; bf16 + channels_last; the latter with the loss under
torch.compile (``--no-compile`` drops it); and the same fp32 step without the entropy term (the entropy term's cost). Prints ms/step, images/s, the ratio to fp32, and the
projected time of ``--epochs`` epochs of ``--epoch-images`` images (CelebA: 162,770 train images,
the paper's 70 epochs). Steps use train_epoch's own batching from a uint8 dataset kept on the device.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _results import add_json_argument, row, write

from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.training.loop import adam, train_epoch

ARCHS = {
    "digits": (ArchConfig((1, 16, 16), 8, (32, 64, 128), (128, 64, 32), 4), False),
    "mnist": (ArchConfig((1, 32, 32), 16, (128, 256, 512, 1024), (1024, 512, 256), 4), False),
    "celeba": (ArchConfig((3, 64, 64), 64, (128, 256, 512, 1024), (1024, 512, 256, 128), 5), True),
}
VARIANTS = {  # name: (amp dtype, channels_last, entropy weight, torch.compile the loss as train.compile does)
    "fp32": (None, False, 0.05, False),
    "fp32+channels_last": (None, True, 0.05, False),
    "bf16": (torch.bfloat16, False, 0.05, False),
    "bf16+channels_last": (torch.bfloat16, True, 0.05, False),
    "bf16+channels_last+compile": (torch.bfloat16, True, 0.05, True),
    "fp32, no entropy term": (None, False, 0.0, False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="celeba")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epoch-images", type=int, default=162_770)
    ap.add_argument("--epochs", type=int, default=70)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    add_json_argument(ap)
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg, spectral = ARCHS[args.arch]
    data = torch.randint(0, 256, (args.batch * args.steps, *cfg.image_shape), dtype=torch.uint8, device=device)
    models = {}
    for name, (amp, cl, beta, compiled) in VARIANTS.items():
        if compiled and args.no_compile:
            continue
        torch.manual_seed(0)
        m = build_objective("eae", cfg, {"entropy_weight": beta, "spectral_norm": spectral}).to(device)
        if beta == 0.0:  # skip the estimator entirely, not just its weight
            m.loss = _without_entropy(m)
        if cl:
            m = m.to(memory_format=torch.channels_last)
        loss_fn = torch.compile(m.loss) if compiled else None  # as the train stage does (train.compile)
        models[name] = (m, adam(m.parameters(), lr=1e-4), amp, cl, loss_fn)

    def epoch(name: str) -> float:
        m, opt, amp, cl, loss_fn = models[name]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        train_epoch(
            m,
            opt,
            data,
            args.batch,
            generator=torch.Generator().manual_seed(0),
            amp_dtype=amp,
            channels_last=cl,
            loss_fn=loss_fn,
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / args.steps

    for name in models:  # warm-up (cuDNN autotuning, allocator)
        epoch(name)
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            times[name].append(epoch(name))
    base = statistics.median(times["fp32"])
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"device {gpu}, torch {torch.__version__}, arch {args.arch}, batch {args.batch}, "
        f"{args.steps} steps x {args.rounds} rounds"
    )
    rows = []
    for name, ts in times.items():
        t = statistics.median(ts)
        epoch_s = args.epoch_images / args.batch * t
        rows.append(
            row(
                f"train step {args.arch} batch {args.batch}: {name}",
                args.batch / t,
                "img/s",
                spread=(args.batch / max(ts), args.batch / min(ts)),
                details={
                    "ms_per_step": t * 1e3,
                    "vs_fp32": base / t,
                    "epoch_s": epoch_s,
                    "epochs": args.epochs,
                    "epoch_images": args.epoch_images,
                    "projected_h": args.epochs * epoch_s / 3600,
                    "device": gpu,
                },
            )
        )
        print(
            f"{name:24s} {t * 1e3:8.2f} ms/step (spread {min(ts) * 1e3:.2f}-{max(ts) * 1e3:.2f})  "
            f"{args.batch / t:9.1f} img/s  x{base / t:5.2f} vs fp32  epoch {epoch_s / 60:6.1f} min  "
            f"{args.epochs} epochs {args.epochs * epoch_s / 3600:6.2f} h"
        )
    e = statistics.median(times["fp32"]) / statistics.median(times["fp32, no entropy term"])
    print(f"entropy term overhead (fp32): {100 * (e - 1):+.2f} % of a step")
    write(args.json, "train_variants", rows)


def _without_entropy(model):
    from eae.models.objectives.base import reconstruction_loss

    def loss(x):
        z, x_hat = model(x)
        recon = reconstruction_loss(x_hat.float(), x.float())
        return recon, {"loss": recon.detach(), "recon": recon.detach(), "entropy": recon.detach() * 0}

    return loss


if __name__ == "__main__":
    main()
