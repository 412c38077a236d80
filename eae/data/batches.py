"""Minibatches of float images from a uint8 image tensor (training, inference, feature extraction)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (on the tensor's own device)."""
    return x_uint8.float().div_(255.0)


def batches(
    images: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
    device: torch.device | None = None,
    channels_last: bool = False,
    rows: tuple[int, int] = (0, 1),
) -> Iterable[torch.Tensor]:
    """Yield float batches in [0, 1] from a uint8 [N, C, H, W] tensor kept wherever it lives.

    The permutation is drawn on the CPU generator so the order is device-independent.
    With ``device``, uint8 batches are copied there before the float conversion (pin
    ``images`` for asynchronous copies); the dataset itself may stay on the CPU.
    ``rows`` = (rank, ranks): yield only part ``rank`` of ``ranks`` equal parts of every batch
    (data-parallel training: every rank draws the same permutation, so the parts of the ranks
    together are exactly the single-process batches; batch_size must divide evenly).
    """
    rank, ranks = rows
    if batch_size % ranks or not 0 <= rank < ranks:
        raise ValueError(f"cannot take part {rank} of {ranks} of a batch of {batch_size}")
    part = batch_size // ranks
    n = len(images)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(images.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        first = start + rank * part
        idx = order[first : min(first + part, start + batch_size)]
        x = torch.index_select(images, 0, idx)  # far faster than images[idx]
        if device is not None and x.device != device:
            x = (
                x.pin_memory().to(device, non_blocking=True)
                if x.device.type == "cpu" and device.type == "cuda"
                else x.to(device)
            )
        x = to_float(x)
        yield x.contiguous(memory_format=torch.channels_last) if channels_last else x
