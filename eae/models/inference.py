"""Eval-mode inference with a trained objective: codes and reconstructions of uint8 images.

Every function runs on the device the model's parameters live on (the caller chose it).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from eae.data.batches import batches


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Deterministic codes of uint8 images in eval mode (``model.encode``: the EAE's BatchNorm
    code with running statistics, a VAE's posterior mean), on the model's device."""
    model.eval()
    return torch.cat(
        [model.encode(x) for x in batches(images, batch_size, shuffle=False, drop_last=False, device=device_of(model))]
    )


def reconstruction_batches(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> Iterable[torch.Tensor]:
    """Eval-mode float reconstructions in [0, 1] of uint8 images, batch by batch, on the model's device."""
    model.eval()
    for x in batches(images, batch_size, shuffle=False, drop_last=False, device=device_of(model)):
        with torch.no_grad():
            yield model(x)[1]


@torch.no_grad()
def reconstruction_error(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> float:
    """Eval-mode squared error of the reconstructions of uint8 images, summed over the pixel values and
    averaged over the images: the training loss's reconstruction term, on held-out data."""
    total = 0.0
    for x, x_hat in zip(
        batches(images, batch_size, shuffle=False, drop_last=False, device=device_of(model)),
        reconstruction_batches(model, images, batch_size),
    ):
        total += float((x_hat.float() - x.float()).pow(2).flatten(1).sum(1).sum())
    return total / max(1, len(images))


def reconstruct(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """All reconstructions of ``reconstruction_batches`` in one tensor."""
    return torch.cat(list(reconstruction_batches(model, images, batch_size)))


@torch.no_grad()
def posterior(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of a VAE-family model's q(z|x) for uint8 images, eval mode, on the model's device."""
    model.eval()
    parts = [
        model.posterior(x) for x in batches(images, batch_size, shuffle=False, drop_last=False, device=device_of(model))
    ]
    return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
