"""The EAE objective and one training epoch."""

from __future__ import annotations

from typing import Iterable

import torch

from eae.entropy import kl_entropy
from eae.model import EAE


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over pixels, averaged over the batch:

        recon = (1/N) sum_n ||x_hat_n - x_n||^2  =  C*H*W * MSE

    The per-image sum keeps entropy_weight on the scale of the paper's values
    (0.05 and 1.0 on MNIST); divide by C*H*W for the per-pixel MSE.
    """
    return (x_hat - x).pow(2).flatten(1).sum(1).mean()


def eae_loss(model: EAE, x: torch.Tensor, entropy_weight: float, k: int = 1,
             decoder_l2: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """loss = recon(D(z), x) - entropy_weight * H_KL(z) + decoder_l2 * ||W_dec||^2,
    z = BN(E(x)) over the minibatch x.

    The loss terms are computed in float32 even when the network runs under autocast."""
    z, x_hat = model(x)
    recon = reconstruction_loss(x_hat.float(), x.float())
    entropy = kl_entropy(z.float(), k=k)
    loss = recon - entropy_weight * entropy
    if decoder_l2 > 0:
        loss = loss + decoder_l2 * getattr(model, "_orig_mod", model).decoder.weight_l2()
    return loss, {"loss": loss.detach(), "recon": recon.detach(), "entropy": entropy.detach()}


def to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (on the tensor's own device)."""
    return x_uint8.float().div_(255.0)


def batches(images: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
            shuffle: bool = True, drop_last: bool = True, device: torch.device | None = None,
            channels_last: bool = False) -> Iterable[torch.Tensor]:
    """Yield float batches in [0, 1] from a uint8 [N, C, H, W] tensor kept wherever it lives.

    The permutation is drawn on the CPU generator so the order is device-independent.
    With ``device``, uint8 batches are copied there before the float conversion (pin
    ``images`` for asynchronous copies); the dataset itself may stay on the CPU.
    """
    n = len(images)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(images.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        x = torch.index_select(images, 0, order[start:start + batch_size])  # far faster than images[idx]
        if device is not None and x.device != device:
            x = x.pin_memory().to(device, non_blocking=True) if x.device.type == "cpu" and device.type == "cuda" \
                else x.to(device)
        x = to_float(x)
        yield x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_epoch(model: EAE, optimizer: torch.optim.Optimizer, images: torch.Tensor, batch_size: int,
                entropy_weight: float, k: int = 1, decoder_l2: float = 0.0,
                generator: torch.Generator | None = None, progress=None, device: torch.device | None = None,
                amp_dtype: torch.dtype | None = None, channels_last: bool = False,
                forward: EAE | None = None) -> dict[str, float]:
    """One pass over ``images`` (uint8, on the training device or pinned on the CPU with ``device``).
    Returns mean stats.

    amp_dtype: run the network under autocast in this dtype (e.g. torch.bfloat16); the loss
        terms stay float32. forward: a compiled wrapper of ``model`` to call instead of it.
    Incomplete final batches are dropped: BatchNorm statistics and the k-NN
    entropy both need the full minibatch.
    """
    model.train()
    net = forward or model
    dev = device or images.device
    totals: dict[str, torch.Tensor] = {}
    steps = 0
    for x in batches(images, batch_size, generator, device=device, channels_last=channels_last):
        with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            loss, stats = eae_loss(net, x, entropy_weight, k, decoder_l2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for key, v in stats.items():
            totals[key] = totals.get(key, 0.0) + v
        steps += 1
        if progress is not None:
            progress.update(1)
    if steps == 0:
        raise ValueError(f"no full batch: {len(images)} images, batch_size {batch_size}")
    result = {key: float(v / steps) for key, v in totals.items()}
    if not all(torch.isfinite(torch.tensor(list(result.values())))):
        raise FloatingPointError(f"training diverged: {result}")
    return result


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode(model: EAE, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Codes of uint8 images in eval mode (BatchNorm uses its running statistics), on the model's device."""
    model.eval()
    return torch.cat([model.encoder(x) for x in batches(images, batch_size, shuffle=False, drop_last=False,
                                                          device=_device_of(model))])


def reconstruction_batches(model: EAE, images: torch.Tensor, batch_size: int = 500) -> Iterable[torch.Tensor]:
    """Eval-mode float reconstructions in [0, 1] of uint8 images, batch by batch, on the model's device."""
    model.eval()
    for x in batches(images, batch_size, shuffle=False, drop_last=False, device=_device_of(model)):
        with torch.no_grad():
            yield model(x)[1]


def reconstruct(model: EAE, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """All reconstructions of ``reconstruction_batches`` in one tensor."""
    return torch.cat(list(reconstruction_batches(model, images, batch_size)))
