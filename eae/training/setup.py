"""Building blocks of a training run, from plain values: the networks for a prepared dataset, where
its images live during training, a copy of the weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from eae.models.networks import ArchConfig


def arch_for(
    manifest: Mapping,
    *,
    latent_dim: int,
    encoder_channels: Sequence[int],
    decoder_channels: Sequence[int],
    kernel_size: int,
    code_batchnorm: bool = True,
) -> ArchConfig:
    """The networks for the prepared images of ``manifest`` (``eae.data.prepared.read_manifest``)."""
    return ArchConfig(
        image_shape=tuple(manifest["image_shape"]),
        latent_dim=latent_dim,
        encoder_channels=tuple(encoder_channels),
        decoder_channels=tuple(decoder_channels),
        kernel_size=kernel_size,
        code_batchnorm=code_batchnorm,
    )


def place_images(images: np.ndarray, device: torch.device, max_bytes: float) -> tuple[torch.Tensor, bool]:
    """uint8 images on ``device`` when they fit in ``max_bytes`` (always on the CPU), else pinned in CPU
    memory for copying per batch. Returns (tensor, on_device)."""
    data = torch.from_numpy(images)
    if device.type == "cpu" or images.nbytes <= max_bytes:
        return data.to(device), True
    return data.pin_memory(), False


def weights_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state (e.g. the best epoch's weights, for ``load_state_dict``)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
