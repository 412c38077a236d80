"""Data-parallel training processes for the train stage: torchrun (``torch.distributed.run``) as
the launcher, DistributedDataParallel in the workers (the exactness is ``eae.training.distributed``'s).

    stage process (dvc repro, dvc exp run, the Prefect flow: `python -m pipelines.train`)
      └─ train.nproc_per_node x train.nnodes > 1: torchrun, in this process, starts
         train.nproc_per_node workers `python -m pipelines.train` on this machine; each finds
         itself a worker (torchrun's TORCHELASTIC_RUN_ID and RANK in its environment), joins
         the process group and trains its rows of every global batch. Rank 0 writes the outputs.

One machine: torchrun's standalone rendezvous (a free local port). Several machines: every
machine runs the stage (node 0 through DVC, the others `python -m pipelines.train`) with the
same params.yaml and data, its own ``train.node_rank`` (EAE_TRAIN__NODE_RANK) and node 0's
``train.rdzv_endpoint``; a static rendezvous makes node 0's first process global rank 0, so the
outputs appear where DVC runs.

Failure: a worker that fails records its error (torch.distributed.elastic's error file);
torchrun stops the other workers and this launcher fails with the first failing rank's error
(exit code 2 for a configuration error, else 1). A collective that waits longer than
``train.dist_timeout_s`` fails its rank, so no rank waits forever for a dead or stuck one.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import timedelta

from eae.errors import EAEError
from pipelines._stage import log, resolve_device
from pipelines.config import ConfigError, TrainParams

# The train parameters that say how many processes train where, not what is trained.
LAUNCH_KEYS = ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint", "dist_backend", "dist_timeout_s")


def world_size(t: TrainParams) -> int:
    return t.nproc_per_node * t.nnodes


def is_worker() -> bool:
    """True in a process that torchrun started (it sets these for its workers only)."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ


def needs_launcher(t: TrainParams) -> bool:
    return world_size(t) > 1 and not is_worker()


def torchrun_args(t: TrainParams, module: str) -> list[str]:
    """The torchrun command line (without the program name) that runs ``python -m module``."""
    args = [f"--nproc-per-node={t.nproc_per_node}", f"--nnodes={t.nnodes}", "--max-restarts=0"]
    if t.nnodes == 1:
        args.append("--standalone")
    else:
        args += ["--rdzv-backend=static", f"--rdzv-endpoint={t.rdzv_endpoint}", f"--node-rank={t.node_rank}"]
    return [*args, "--module", module]


def check_devices(t: TrainParams) -> None:
    """Configuration errors that torchrun would only report from inside every worker."""
    import torch

    device = resolve_device(t.device)
    if device.type == "cuda" and t.nproc_per_node > torch.cuda.device_count():
        raise ConfigError(
            f"train.nproc_per_node ({t.nproc_per_node}) exceeds the {torch.cuda.device_count()} "
            f"CUDA devices of this machine (one process per GPU)"
        )
    if device.type == "cpu" and t.dist_backend == "nccl":
        raise ConfigError("train.dist_backend nccl needs CUDA devices (train.device is cpu here): use gloo or auto")


# What a rank raises when another rank died under it: a consequence, never the cause to report.
PEER_FAILURE = re.compile(
    r"connection closed by peer|remote worker|connection reset by peer|broken pipe|"
    r"NCCL communicator was aborted|watchdog caught collective",
    re.IGNORECASE,
)


def root_failure(failures: dict) -> tuple[int, object, str]:
    """(rank, failure, one-line message) of the failure that caused the others.

    torchrun's ``get_first_failure`` orders by error-file timestamps, which have one-second
    resolution: when rank 1 raises and rank 0's collective then breaks in the same second, it
    reports rank 0's "connection closed by peer". A rank whose own error is a broken peer
    connection comes after any other failure; then the earliest, then the lowest rank.
    """

    def text(failure) -> str:
        message = failure.message  # the worker's error file: {"message": ..., "extraInfo": {traceback}}
        return " ".join(str(message.get("message", message) if isinstance(message, dict) else message).split())

    rank = min(failures, key=lambda r: (bool(PEER_FAILURE.search(text(failures[r]))), failures[r].timestamp, r))
    return rank, failures[rank], text(failures[rank])


def launch(t: TrainParams, module: str) -> None:
    """Run ``python -m module`` as world_size(t) workers with torchrun, here; return when every
    worker of this machine succeeded, else raise the first failure as one line."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    check_devices(t)
    args = torchrun_args(t, module)
    log.info("torchrun %s (%d processes in all)", " ".join(args), world_size(t))
    threads = "OMP_NUM_THREADS" not in os.environ  # else torchrun sets 1: CPU workers share the cores instead
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // t.nproc_per_node))
    try:
        run(parse_args(args))
    except ChildFailedError as exc:
        rank, failure, message = root_failure(exc.failures)
        error = ConfigError if failure.exitcode == 2 else EAEError
        raise error(f"training process rank {rank} failed (exit code {failure.exitcode}): {message}") from None
    finally:
        if threads:
            os.environ.pop("OMP_NUM_THREADS", None)


@contextlib.contextmanager
def worker(t: TrainParams) -> Iterator[tuple[BatchShard, torch.device]]:  # noqa: F821
    """(shard, device) of this process: in a torchrun worker, after joining the process group
    (left on exit); in a single process, the whole batch and train.device."""
    import torch
    import torch.distributed as dist

    from eae.training.distributed import LOCAL, BatchShard

    if not is_worker():
        yield LOCAL, resolve_device(t.device)
        return
    local_rank = int(os.environ["LOCAL_RANK"])
    device = resolve_device(t.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = t.dist_backend if t.dist_backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    dist.init_process_group(
        backend, timeout=timedelta(seconds=t.dist_timeout_s), device_id=device if backend == "nccl" else None
    )
    try:
        shard = BatchShard.from_process_group()
        if shard.world_size != world_size(t):
            raise ConfigError(
                f"torchrun started {shard.world_size} processes, the parameters ask for "
                f"{world_size(t)} (train.nproc_per_node x train.nnodes)"
            )
        if shard.rank:
            log.setLevel("WARNING")
        log.info("rank %d of %d on %s (%s)", shard.rank, shard.world_size, device, backend)
        yield shard, device
    finally:
        dist.destroy_process_group()


def record_errors(fn):
    """In a torchrun worker, ``fn`` with its exceptions recorded for the launcher (the message it
    reports); elsewhere ``fn`` itself."""
    if not is_worker():
        return fn
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(fn)


def broadcast(obj, shard):
    """Rank 0's ``obj`` on every rank (a picklable object; identity in one process)."""
    if not shard.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=shard.group)
    return box[0]
