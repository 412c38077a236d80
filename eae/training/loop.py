"""One training epoch of any objective (``eae.models.objectives``)."""

from __future__ import annotations

import torch

from eae.data.batches import batches
from eae.models.objectives.base import Objective
from eae.training.distributed import LOCAL, BatchShard


def adam(parameters, lr: float) -> torch.optim.Adam:
    """The optimiser every objective trains with: Adam, as one fused kernel per step where torch has
    one for the parameters' device (CPU, CUDA), else the per-parameter loop. Fused or not, the update is
    Adam's; only float rounding differs (benchmarks/vs_pythae.py measures the speed)."""
    params = list(parameters)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused)


def train_epoch(
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    progress=None,
    device: torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    loss_fn=None,
    shard: BatchShard = LOCAL,
    max_steps: int | None = None,
) -> dict[str, float]:
    """One pass over ``images`` (uint8, on the training device or pinned on the CPU with ``device``),
    one optimizer step per minibatch on ``objective.loss(x)``. Returns the mean of each statistic.

    amp_dtype: run the networks under autocast in this dtype (e.g. torch.bfloat16); the
        objectives compute their loss terms in float32. loss_fn: a compiled ``objective.loss``
        to call instead of it, or its DistributedDataParallel wrapper.
    shard: this process's part of every global batch of ``batch_size`` (``eae.training.distributed``; the
        objective must be distributed over the same shard): every rank draws the same permutation
        and takes its rows; the statistics returned are those of the global batches.
    max_steps: stop after this many steps (a partial epoch; None = the whole pass).
    Incomplete final batches are dropped: batch statistics (BatchNorm, the k-NN entropy, MMD)
    need the full minibatch.
    """
    objective.train()
    step_loss = loss_fn or objective.loss
    dev = device or images.device
    totals: dict[str, torch.Tensor] = {}
    steps = 0
    for x in batches(
        images, batch_size, generator, device=device, channels_last=channels_last, rows=(shard.rank, shard.world_size)
    ):
        with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            loss, stats = step_loss(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for key, v in stats.items():
            totals[key] = totals.get(key, 0.0) + v
        steps += 1
        if progress is not None:
            progress.update(1)
        if max_steps is not None and steps >= max_steps:
            break
    if steps == 0:
        raise ValueError(f"no full batch: {len(images)} images, batch_size {batch_size}")
    keys = list(totals)
    means = shard.mean(torch.stack([torch.as_tensor(totals[k], dtype=torch.float32) for k in keys]) / steps)
    result = {key: float(v) for key, v in zip(keys, means.cpu())}
    if not all(torch.isfinite(torch.tensor(list(result.values())))):
        raise FloatingPointError(f"training diverged: {result}")
    return result
