"""The Entropic Autoencoder (Ghose, Rashwan & Poupart, UAI 2020).

    z    = BN(E(x))                    BatchNorm1d(affine=False) over the minibatch: each code
                                       dimension has mean 0 and variance 1
    loss = recon(D(z), x) - entropy_weight * H_KL(z) [+ decoder_l2 * ||W_D||^2]

H_KL is the Kozachenko–Leonenko k-nearest-neighbour entropy estimate over the minibatch
(``eae.models.entropy.kl_entropy``). With mean and variance fixed by the BatchNorm, maximising the
entropy pulls the code distribution towards N(0, I), the maximum-entropy law with those
moments, so the isotropic sampler is the model's prior. The paper adds an L2 penalty on the
decoder weights for CIFAR-10 and spectral normalisation of the decoder for CelebA.

Beyond the paper (off by default):

- a schedule for the entropy weight, linear from ``entropy_start_weight`` at epoch 0 to
  ``entropy_weight`` at epoch ``entropy_ramp_epochs``,

      beta(e) = start + (entropy_weight - start) * min(1, e / ramp_epochs)

  (a warm-up when start < entropy_weight, a cool-down when start > entropy_weight);
- a larger entropy pool (MoCo-style): the estimate's sample is the minibatch plus up to
  ``entropy_queue`` detached codes of the epoch's earlier minibatches (``kl_entropy``'s
  ``reference``), so with a minibatch of 100 codes from 10 classes each code's nearest neighbour is
  no longer almost surely one of its own class's ~10. The queue starts empty every epoch, so a run
  resumed at an epoch boundary repeats the uninterrupted one exactly; under data parallelism every
  rank holds the same queue of gathered global-batch codes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from eae.models.entropy import kl_entropy
from eae.models.networks import ArchConfig
from eae.models.objectives.base import Objective, Stats, reconstruction_loss
from eae.models.objectives.weights import DEFAULT_ENTROPY_WEIGHT, EAEWeights


class EAE(Objective):
    name = "eae"
    series = ("loss", "recon", "entropy")
    isotropic_prior = True
    code_is_batch_normalised = True
    Weights = EAEWeights

    def __init__(
        self,
        arch: ArchConfig,
        weights: EAEWeights | Mapping[str, Any] | None = None,
        *,
        entropy_weight: float = DEFAULT_ENTROPY_WEIGHT,
        **overrides: Any,
    ):
        super().__init__(arch, weights, **overrides)
        if not (math.isfinite(entropy_weight) and entropy_weight >= 0):
            raise ValueError(f"entropy_weight must be a finite number >= 0, got {entropy_weight!r}")
        w = self.weights
        self.final_weight, self.entropy_k, self.l2 = float(entropy_weight), w.entropy_k, w.decoder_l2
        self.start_weight = self.final_weight if w.entropy_start_weight is None else w.entropy_start_weight
        self.ramp_epochs = w.entropy_ramp_epochs
        self.entropy_weight = self.final_weight if not self.ramp_epochs else self.start_weight
        self.queue: torch.Tensor | None = None  # detached codes of this epoch's earlier minibatches, newest first
        # The EAE's defining layer: batch statistics fix mean 0 / variance 1 per code dimension (without it,
        # arch.code_batchnorm false, the ablation of the paper's §1: the entropy term alone on a biased linear code).
        self.code_norm = nn.BatchNorm1d(arch.latent_dim, affine=False) if arch.code_batchnorm else nn.Identity()

    def decoder_spectral_norm(self) -> bool:
        return self.weights.spectral_norm

    @classmethod
    def upgrade_state(cls, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Checkpoints from before the encoder's last layer lost its bias b: BatchNorm subtracts it with
        the mean, so folding it into the running mean (mu' = mu - b) gives the same eval-mode codes,
        (W x + b - mu) / sigma = (W x - mu') / sigma."""
        if "encoder.fc.bias" not in state or "code_norm.running_mean" not in state:
            return state  # today's layout, or not an EAE's weights (loading names the mismatch)
        state = dict(state)
        bias = state.pop("encoder.fc.bias")
        state["code_norm.running_mean"] = state["code_norm.running_mean"] - bias
        return state

    def describe(self) -> dict:
        """The weights and the top-level ``entropy_weight`` (params.yaml keeps it outside ``objectives.eae``)."""
        return {"name": self.name, "weights": {"entropy_weight": self.final_weight, **self.weights.model_dump()}}

    def start_epoch(self, epoch: int) -> None:
        self.queue = None
        if self.ramp_epochs:
            t = min(1.0, epoch / self.ramp_epochs)
            self.entropy_weight = self.start_weight + (self.final_weight - self.start_weight) * t

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.code_norm(self.encoder(x))

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """Loss terms in float32 even when the networks run under autocast."""
        z, x_hat = self(x)
        recon = reconstruction_loss(x_hat.float(), x.float())
        codes = self.shard.gather(z.float())  # the whole (global) batch
        entropy = kl_entropy(codes, k=self.entropy_k, reference=self.queue)
        if self.weights.entropy_queue and self.training:
            kept = codes.detach() if self.queue is None else torch.cat([codes.detach(), self.queue])
            self.queue = kept[: self.weights.entropy_queue]
        loss = recon - self.entropy_weight * entropy
        if self.l2 > 0:
            loss = loss + self.l2 * self.decoder_l2()
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "entropy": entropy.detach()}
