"""Data-parallel scaling of a training epoch: images/s with 1 process vs N (exact DDP, eae.training.distributed).

    python benchmarks/ddp_scaling.py [--procs 1 2] [--arch digits|mnist|celeba] [--objective eae]
                                     [--device cpu|cuda] [--backend gloo|nccl] [--batch 100] [--steps 20]

Each configuration runs ``eae.training.loop.train_epoch`` on random uint8 images in fresh processes: one
process without a process group, or N ranks (gloo on CPU, NCCL on GPUs) that each take
batch/N rows of every global batch of ``--batch``. On CPU the cores are split evenly between
the ranks (torch threads = cores / N). A warm-up epoch of ``--warmup`` steps precedes the
timed epoch of ``--steps`` steps. Prints global images/s per configuration and the speed-up over
one process, all measured in this run.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.training.distributed import LOCAL, BatchShard, data_parallel_loss
from eae.training.loop import adam, train_epoch

ARCHS = {
    "digits": ArchConfig((1, 16, 16), 8, (32, 64, 128), (128, 64, 32), 4),
    "mnist": ArchConfig((1, 32, 32), 16, (128, 256, 512, 1024), (1024, 512, 256), 4),
    "celeba": ArchConfig((3, 64, 64), 64, (128, 256, 512, 1024), (1024, 512, 256, 128), 5),
}
WEIGHTS = {"eae": {"entropy_weight": 0.2}, "ae": {}, "wae": {"mmd_weight": 0.6}, "vae": {"kl_weight": 0.312}}


def worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // world))
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    shard = LOCAL
    if world > 1:
        dist.init_process_group(args.backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
        shard = BatchShard.from_process_group()
    try:
        torch.manual_seed(0)
        arch = ARCHS[args.arch]
        model = build_objective(args.objective, arch, WEIGHTS[args.objective]).to(device).distribute(shard)
        loss_fn = (
            data_parallel_loss(model, [device.index] if device.type == "cuda" else None) if shard.distributed else None
        )
        opt = adam(model.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(0)
        images = torch.randint(
            0, 256, (args.batch * max(args.steps, args.warmup), *arch.image_shape), dtype=torch.uint8, generator=g
        ).to(device)

        def epoch(steps: int) -> float:
            data = images[: args.batch * steps]
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            train_epoch(model, opt, data, args.batch, generator=g, loss_fn=loss_fn, shard=shard)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t

        epoch(args.warmup)
        seconds = epoch(args.steps)
        if rank == 0:
            with open(out, "w") as fh:
                fh.write(str(args.batch * args.steps / seconds))
    finally:
        if world > 1:
            dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--arch", choices=sorted(ARCHS), default="digits")
    ap.add_argument("--objective", choices=sorted(WEIGHTS), default="eae")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default=None, help="default: nccl on cuda, gloo on cpu")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write the result rows to FILE (make bench collects them)")
    args = ap.parse_args()
    args.backend = args.backend or ("nccl" if args.device.startswith("cuda") else "gloo")
    print(
        f"arch {args.arch}, objective {args.objective}, global batch {args.batch}, {args.steps} timed steps, "
        f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else os.cpu_count()}"
        f"{'' if args.device.startswith('cuda') else ' cores'}), backend {args.backend}"
    )
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.procs:
            if args.batch % n:
                raise SystemExit(f"--batch {args.batch} does not split over {n} processes")
            out = os.path.join(tmp, f"{n}.txt")
            mp.start_processes(worker, args=(n, free_port(), args, out), nprocs=n, start_method="spawn")
            rates[n] = float(open(out).read())
            print(
                f"{n} process{'es' if n > 1 else ''}: {rates[n]:9.1f} img/s   "
                f"speed-up x{rates[n] / rates[args.procs[0]]:.2f} over {args.procs[0]}",
                flush=True,
            )
    from _results import row, write

    write(
        args.json,
        "ddp_scaling",
        [
            row(
                f"data-parallel training images/s, {n} / {args.procs[0]} processes ({args.backend}, {args.device})",
                rates[n] / rates[args.procs[0]],
                "x",
                details={"images_per_s": rates},
            )
            for n in args.procs[1:]
        ],
    )


if __name__ == "__main__":
    main()
