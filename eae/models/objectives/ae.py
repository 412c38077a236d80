"""Deterministic autoencoders without a prior: AE, AE-L2 and the regularised autoencoders
RAE, RAE-L2, RAE-GP, RAE-SN of Ghosh et al. 2019, "From variational to deterministic
autoencoders" (ICLR 2020), §4 and their reference code (ParthaEth/Regularized_autoencoders-RAE-):

    loss = recon(D(z), x) + embedding_weight * ½||z||²            (RAE: L_Z = ½||z||², z = E(x))
                          + decoder_l2 * ||θ_D||²                 (-L2: weight decay on the decoder)
                          + gp_weight * ||∇_z D(z)||²_F           (-GP: the decoder's Jacobian norm)
    RAE-SN: spectral normalisation of every decoder layer instead of a penalty.

AE is the reconstruction term alone, AE-L2 adds only the decoder L2. None has a prior: their
latent density is whatever the densities fitted after training (MVG, GMM) make of it.

Scale: our reconstruction sums squared errors over the C*H*W values of an image; the
reference code's sums over channels and averages over the H*W pixels, and its L_Z averages
z² over the d code dimensions. A reference weight w therefore corresponds to
w * H*W * 2/d for ``embedding_weight`` and w * H*W for ``decoder_l2`` here (params.yaml lists
the converted values next to their source).
"""

from __future__ import annotations

import torch

from eae.models.networks import ArchConfig
from eae.models.objectives.base import Objective, Stats, reconstruction_loss
from eae.models.objectives.weights import AEL2Weights, NoWeights, RAEGPWeights, RAEL2Weights, RAESNWeights, RAEWeights
from eae.training.distributed import LOCAL, BatchShard


def jacobian_sq_norm(
    x_hat: torch.Tensor,
    z: torch.Tensor,
    probes: int = 1,
    generator: torch.Generator | None = None,
    shard: BatchShard = LOCAL,
) -> torch.Tensor:
    """(1/N) Σ_n ||J_n||²_F with J_n = ∂x_hat_n / ∂z_n, differentiable (for a gradient penalty).

    ``probes`` >= 1: Hutchinson's estimator, E_v ||J^T v||² = ||J||²_F for v ~ N(0, I) in image
    space, averaged over ``probes`` draws per image; one reverse pass each, unbiased.
    ``probes`` = 0: exact, one reverse pass per output value (C*H*W passes: for tests and tiny
    decoders). Through a decoder with train-mode BatchNorm, x_hat_n also depends slightly on the
    other codes of the batch; like the reference implementations, those O(1/N) cross terms are
    part of the penalty. With a ``shard`` (``eae.training.distributed``) the probes are this rank's rows of a
    draw for the global batch, and the mean is over the local rows.
    """
    flat = x_hat.flatten(1)
    n, p = flat.shape
    if probes < 0:
        raise ValueError(f"probes must be >= 0, got {probes}")
    if probes == 0:
        basis = torch.zeros_like(flat)
        total = z.new_zeros(())
        for k in range(p):
            basis.zero_()
            basis[:, k] = 1.0
            (g,) = torch.autograd.grad(flat, z, grad_outputs=basis, create_graph=True, retain_graph=True)
            total = total + g.pow(2).sum()
        return total / n
    total = z.new_zeros(())
    for _ in range(probes):
        v = shard.randn_like(flat, generator=generator)
        (g,) = torch.autograd.grad(flat, z, grad_outputs=v, create_graph=True, retain_graph=True)
        total = total + g.pow(2).sum()
    return total / (n * probes)


class RegularizedAE(Objective):
    """The shared loss of AE, AE-L2 and the RAEs (see the module docstring): a term is there when the
    subclass's ``Weights`` has its weight; subclasses register under their name."""

    name = ""
    isotropic_prior = False

    def __init__(self, arch: ArchConfig, weights=None, **overrides):
        super().__init__(arch, weights, **overrides)
        w = self.weights
        self.embedding_weight, self.l2 = getattr(w, "embedding_weight", 0.0), getattr(w, "decoder_l2", 0.0)
        self.gp_weight, self.gp_probes = getattr(w, "gp_weight", 0.0), getattr(w, "gp_probes", 1)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        z = self.encoder(x)
        x_hat = self.decoder(z)
        recon = reconstruction_loss(x_hat.float(), x.float())
        loss = recon
        stats = {"recon": recon.detach()}
        if "embedding" in self.series:
            embedding = 0.5 * z.float().pow(2).sum(1).mean()
            loss = loss + self.embedding_weight * embedding
            stats["embedding"] = embedding.detach()
        if self.l2 > 0:
            loss = loss + self.l2 * self.decoder_l2()
        if "gradient_penalty" in self.series:
            gp = jacobian_sq_norm(x_hat.float(), z, self.gp_probes, shard=self.shard)
            loss = loss + self.gp_weight * gp
            stats["gradient_penalty"] = gp.detach()
        return loss, {"loss": loss.detach(), **stats}


class AE(RegularizedAE):
    """Plain autoencoder: reconstruction only."""

    name = "ae"
    series = ("loss", "recon")
    Weights = NoWeights


class AEL2(RegularizedAE):
    """Autoencoder with an L2 penalty on the decoder weights (no code regulariser)."""

    name = "ae_l2"
    series = ("loss", "recon")
    Weights = AEL2Weights


class RAE(RegularizedAE):
    """RAE: ½||z||² on the codes, no decoder regulariser."""

    name = "rae"
    series = ("loss", "recon", "embedding")
    Weights = RAEWeights


class RAEL2(RegularizedAE):
    """RAE-L2: ½||z||² on the codes and L2 on the decoder weights."""

    name = "rae_l2"
    series = ("loss", "recon", "embedding")
    Weights = RAEL2Weights


class RAEGP(RegularizedAE):
    """RAE-GP: ½||z||² on the codes and the squared Frobenius norm of the decoder's Jacobian."""

    name = "rae_gp"
    series = ("loss", "recon", "embedding", "gradient_penalty")
    double_backward = True
    Weights = RAEGPWeights


class RAESN(RegularizedAE):
    """RAE-SN: ½||z||² on the codes, spectrally normalised decoder layers."""

    name = "rae_sn"
    series = ("loss", "recon", "embedding")
    Weights = RAESNWeights

    def decoder_spectral_norm(self) -> bool:
        return True
