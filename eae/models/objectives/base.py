"""What every objective shares: the networks, the reconstruction term and the interface the
training loop, the samplers, checkpoints and export rely on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import torch
from pydantic import ValidationError
from torch import nn

from eae.models.networks import ArchConfig, Decoder, Encoder
from eae.models.objectives.weights import NoWeights
from eae.schema import StrictModel
from eae.training.distributed import LOCAL, BatchShard, sync_batchnorm

Stats = dict[str, torch.Tensor]


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over pixels, averaged over the batch:

        recon = (1/N) sum_n ||x_hat_n - x_n||^2  =  C*H*W * MSE

    Every objective uses this term, so their weights are all on this scale (the paper's
    entropy weights 0.05 and 1.0 on MNIST assume it); divide by C*H*W for the per-pixel MSE.
    """
    return (x_hat - x).pow(2).flatten(1).sum(1).mean()


class Objective(nn.Module):
    """An autoencoder (``encoder`` and ``decoder`` from ``eae.models.networks``) and the loss that trains it.

    Subclasses set ``name`` (the ``model.objective`` value), ``series`` (the statistics ``loss``
    returns, logged per epoch) and ``Weights``, the model of their loss weights
    (``eae.models.objectives.weights``). The weights come as that model, a mapping or keyword
    arguments (``build_objective(name, arch, {"embedding_weight": 0.1})``, ``RAE(arch,
    embedding_weight=0.1)``); ``describe()`` records them, so ``build_objective`` rebuilds the same
    objective from a checkpoint.

    The interface:
        loss(x) -> (loss, stats): one training step's loss on a float batch in [0, 1] (train mode);
            stats are detached scalars, one per name in ``series``.
        encode(x) -> z: the deterministic code the samplers are fitted to (eval mode: the EAE's
            BatchNorm'd code, a VAE's posterior mean).
        forward(x) -> (z, x_hat): code and deterministic reconstruction.
        decoder(z) -> images: what the generator exports.
        distribute(shard): train on one rank's rows of a global minibatch (``eae.training.distributed``):
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
    #: True when a BatchNorm follows the encoder's linear layer (the EAE): that layer then has no bias.
    code_is_batch_normalised: ClassVar[bool] = False
    #: The rows of the global minibatch this process holds (``distribute``); LOCAL: all of them.
    shard: BatchShard = LOCAL

    #: The model of this objective's loss weights.
    Weights: ClassVar[type[StrictModel]] = NoWeights

    def __init__(self, arch: ArchConfig, weights: StrictModel | Mapping[str, Any] | None = None, **overrides: Any):
        super().__init__()
        self.weights = validate_weights(self.Weights, weights, overrides)
        spectral_norm = self.decoder_spectral_norm()
        if spectral_norm is not None:
            arch = replace(arch, spectral_norm=spectral_norm)
        self.arch = arch
        batch_normalised = self.code_is_batch_normalised and arch.code_batchnorm
        self.encoder = Encoder(arch, self.encoder_outputs(arch), bias=not batch_normalised)
        self.decoder = Decoder(arch)

    def encoder_outputs(self, arch: ArchConfig) -> int | None:
        """The encoder's output size; None = the code size (a VAE's encoder also gives log-variances)."""
        return None

    def decoder_spectral_norm(self) -> bool | None:
        """Whether the decoder is spectrally normalised; None = as ``arch`` says."""
        return None

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

    def distribute(self, shard: BatchShard) -> Objective:
        """Train as ``shard``'s part of a global minibatch: every BatchNorm normalises
        over its group, and ``loss`` gathers what it computes on the whole batch. Call before
        building the optimizer; the state_dict keys do not change."""
        self.shard = shard
        if shard.distributed:
            sync_batchnorm(self, shard, differentiable=self.double_backward)
        return self

    @classmethod
    def upgrade_state(cls, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state_dict saved by an earlier version of this objective, in today's layout (the same
        function in eval mode); unchanged by default."""
        return state

    def describe(self) -> dict:
        """{"name", "weights"}: what a checkpoint records to rebuild this objective."""
        return {"name": self.name, "weights": self.weights.model_dump()}

    def decoder_l2(self) -> torch.Tensor:
        """Sum of squared decoder weights (linear and conv layers)."""
        return self.decoder.weight_l2()


def validate_weights(
    model: type[StrictModel], weights: StrictModel | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> StrictModel:
    """``weights`` (a model instance or a mapping) updated with ``overrides``, validated by ``model``;
    ValueError naming each bad or unknown key on one line."""
    given = weights.model_dump() if isinstance(weights, StrictModel) else dict(weights or {})
    try:
        return model.model_validate({**given, **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'weights'}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None
