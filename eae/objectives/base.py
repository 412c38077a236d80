"""What every objective shares: the networks, the reconstruction term and the interface the
training loop, the samplers, checkpoints and export rely on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import nn

from eae.distributed import LOCAL, BatchShard, sync_batchnorm
from eae.networks import ArchConfig, Decoder, Encoder

Stats = dict[str, torch.Tensor]


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over pixels, averaged over the batch:

        recon = (1/N) sum_n ||x_hat_n - x_n||^2  =  C*H*W * MSE

    Every objective uses this term, so their weights are all on this scale (the paper's
    entropy weights 0.05 and 1.0 on MNIST assume it); divide by C*H*W for the per-pixel MSE.
    """
    return (x_hat - x).pow(2).flatten(1).sum(1).mean()


class Objective(nn.Module):
    """An autoencoder (``encoder`` and ``decoder`` from ``eae.networks``) and the loss that trains it.

    Subclasses set ``name`` (the ``model.objective`` value), ``series`` (the statistics ``loss``
    returns, logged per epoch) and take their loss weights as keyword arguments with defaults;
    ``loss_weights`` records them, so ``build(name, arch, loss_weights)`` rebuilds the same
    objective from a checkpoint.

    The interface:
        loss(x) -> (loss, stats): one training step's loss on a float batch in [0, 1] (train mode);
            stats are detached scalars, one per name in ``series``.
        encode(x) -> z: the deterministic code the samplers are fitted to (eval mode: the EAE's
            BatchNorm'd code, a VAE's posterior mean).
        forward(x) -> (z, x_hat): code and deterministic reconstruction.
        decoder(z) -> images: what the generator exports.
        distribute(shard): train on one rank's rows of a global minibatch (``eae.distributed``):
            batch statistics over the whole batch, noise drawn for the whole batch. ``loss`` then
            computes per-image means over the local rows and batch functions on ``shard.gather``-ed
            tensors, so that DistributedDataParallel's averaged gradient is the single-process one.
    """

    name: ClassVar[str] = ""
    series: ClassVar[tuple[str, ...]] = ("loss", "recon")
    #: True when the training objective pulls the codes towards N(0, I), so the isotropic sampler
    #: is the model's own prior; for the others N(0, I) is only a reference point.
    isotropic_prior: ClassVar[bool] = False
    #: True when ``loss`` differentiates through a gradient (a penalty on it): BatchNorm layers
    #: then need a second derivative when distributed.
    double_backward: ClassVar[bool] = False
    #: The rows of the global minibatch this process holds (``distribute``); LOCAL: all of them.
    shard: BatchShard = LOCAL

    def __init__(self, arch: ArchConfig, *, encoder_outputs: int | None = None, spectral_norm: bool | None = None,
                 **loss_weights: Any):
        super().__init__()
        if spectral_norm is not None:
            arch = replace(arch, spectral_norm=spectral_norm)
        self.arch = arch
        self.loss_weights: dict[str, Any] = dict(loss_weights)
        self.encoder = Encoder(arch, encoder_outputs)
        self.decoder = Decoder(arch)

    @property
    def cfg(self) -> ArchConfig:
        return self.arch

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decoder(z)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called by the training loop before epoch ``epoch`` (0-based, also when resuming);
        objectives with a schedule for their weights override it."""

    def distribute(self, shard: BatchShard) -> "Objective":
        """Train as ``shard``'s part of a global minibatch: every BatchNorm normalises
        over its group, and ``loss`` gathers what it computes on the whole batch. Call before
        building the optimizer; the state_dict keys do not change."""
        self.shard = shard
        if shard.distributed:
            sync_batchnorm(self, shard, differentiable=self.double_backward)
        return self

    def describe(self) -> dict:
        """{"name", "weights"}: what a checkpoint records to rebuild this objective."""
        return {"name": self.name, "weights": dict(self.loss_weights)}

    def decoder_l2(self) -> torch.Tensor:
        """Sum of squared decoder weights (linear and conv layers)."""
        return self.decoder.weight_l2()
