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


def _eval_batches(model: nn.Module, images: torch.Tensor, batch_size: int, progress) -> Iterable[torch.Tensor]:
    """Float batches of ``images`` in order on the model's device (eval mode); ``progress``: a tqdm-like
    bar advanced by the images of each batch once it is consumed."""
    model.eval()
    for x in batches(images, batch_size, shuffle=False, drop_last=False, device=device_of(model)):
        yield x
        if progress is not None:
            progress.update(len(x))


@torch.no_grad()
def encode(model: nn.Module, images: torch.Tensor, batch_size: int = 500, progress=None) -> torch.Tensor:
    """Deterministic codes of uint8 images in eval mode (``model.encode``: the EAE's BatchNorm
    code with running statistics, a VAE's posterior mean), on the model's device."""
    return torch.cat([model.encode(x) for x in _eval_batches(model, images, batch_size, progress)])


def reconstruction_batches(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> Iterable[torch.Tensor]:
    """Eval-mode float reconstructions in [0, 1] of uint8 images, batch by batch, on the model's device."""
    model.eval()
    for x in batches(images, batch_size, shuffle=False, drop_last=False, device=device_of(model)):
        with torch.no_grad():
            yield model(x)[1]


def reconstruction_error(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> float:
    """Eval-mode squared error of the reconstructions of uint8 images, summed over the pixel values and
    averaged over the images: the training loss's reconstruction term, on held-out data
    (``reconstruction_mse`` x C H W)."""
    return reconstruction_mse(model, images, batch_size) * images[0].numel()


def reconstruct(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """All reconstructions of ``reconstruction_batches`` in one tensor."""
    return torch.cat(list(reconstruction_batches(model, images, batch_size)))


def _parts(images: torch.Tensor | Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    """One tensor of images as the only part, or the parts as given (e.g. a split's shards)."""
    return [images] if isinstance(images, torch.Tensor) else images


@torch.no_grad()
def reconstruction_mse(model: nn.Module, images: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 500) -> float:
    """Mean squared error per pixel value of the eval-mode reconstructions of uint8 images (both in
    [0, 1]), accumulated batch by batch in float64: mean = sum_i (x_hat_i - x_i)^2 / (N C H W). ``images``:
    one tensor, or several (a split's shards, read one at a time). Memory: one batch (and one part), not
    every reconstruction (N x C x H x W float32 twice over, as a whole-set difference takes)."""
    total, count = 0.0, 0
    for part in _parts(images):
        for x, x_hat in zip(
            batches(part, batch_size, shuffle=False, drop_last=False, device=device_of(model)),
            reconstruction_batches(model, part, batch_size),
        ):
            total += float((x_hat.float() - x).double().pow(2).sum())
            count += x.numel()
    if count == 0:
        raise ValueError("no images to reconstruct")
    return total / count


@torch.no_grad()
def code_statistics(model: nn.Module, images: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 500) -> dict:
    """{"mean", "std", "n"} per code dimension of the eval-mode codes (``encode``) of uint8 images (one tensor
    or several parts), population std. Streamed: each batch's mean and sum of squared deviations M2 are
    merged into the running ones (Chan et al.: M2 = M2_a + M2_b + delta^2 n_a n_b / n, delta = mean_b -
    mean_a), in float64, so memory is one batch whatever the number of images. The train stage records
    those of the training split in the checkpoint; export checks a density against them
    (``eae.sampling.density.check_plausible``)."""
    n, mean, m2 = 0, None, None
    for part in _parts(images):
        for x in _eval_batches(model, part, batch_size, None):
            codes = model.encode(x).double()
            k, batch_mean = len(codes), codes.mean(0)
            batch_m2 = (codes - batch_mean).pow(2).sum(0)
            if mean is None:
                n, mean, m2 = k, batch_mean, batch_m2
                continue
            delta = batch_mean - mean
            total = n + k
            mean = mean + delta * (k / total)
            m2 = m2 + batch_m2 + delta.pow(2) * (n * k / total)
            n = total
    if mean is None:
        raise ValueError("no images to encode")
    return {"mean": mean.tolist(), "std": (m2 / n).sqrt().tolist(), "n": n}


@torch.no_grad()
def posterior(
    model: nn.Module, images: torch.Tensor, batch_size: int = 500, progress=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of a VAE-family model's q(z|x) for uint8 images, eval mode, on the model's device."""
    parts = [model.posterior(x) for x in _eval_batches(model, images, batch_size, progress)]
    return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
