"""The training objectives of the paper's Table 1, behind one registry.

Every objective shares the networks of ``eae.networks`` and the interface of
``eae.objectives.base.Objective``; ``OBJECTIVES`` maps each ``model.objective`` value to its
class. Adding an objective is one module defining a subclass plus one entry here (and its
weights in params.yaml / ``pipelines.config``).

| name            | family  | loss (recon = squared error summed over pixels)                 |
|-----------------|---------|------------------------------------------------------------------|
| eae             | eae     | recon - entropy_weight * H_KL(BN(E(x)))   [+ decoder L2]          |
| ae              | ae      | recon                                                            |
| ae_l2           | ae      | recon + decoder_l2 ||θ_D||²                                      |
| rae             | ae      | recon + embedding_weight ½||z||²                                 |
| rae_l2          | ae      | rae + decoder_l2 ||θ_D||²                                        |
| rae_gp          | ae      | rae + gp_weight ||∇_z D(z)||²_F                                  |
| rae_sn          | ae      | rae with a spectrally normalised decoder                         |
| vae             | vae     | recon(D(z ~ q)) + kl_weight KL(q(z|x) || N(0, I))                |
| cv_vae          | vae     | as vae with q(z|x) = N(mu(x), sigma² I), sigma fixed             |
| two_stage_vae   | vae     | recon / 2γ + D/2 log 2πγ + KL (γ learned), + a second-stage VAE  |
| wae             | wae     | recon + mmd_weight MMD²_IMQ(z, N(0, I))                          |
"""

from __future__ import annotations

from typing import Any

from eae.errors import EAEError
from eae.networks import ArchConfig
from eae.objectives.ae import AE, AEL2, RAE, RAEGP, RAESN, RAEL2
from eae.objectives.base import Objective, reconstruction_loss
from eae.objectives.eae import EAE
from eae.objectives.vae import CVVAE, VAE, TwoStageVAE
from eae.objectives.wae import WAE

OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (
    EAE, AE, AEL2, RAE, RAEL2, RAEGP, RAESN, VAE, CVVAE, WAE, TwoStageVAE)}

__all__ = ["OBJECTIVES", "Objective", "build_objective", "reconstruction_loss"]


def build_objective(name: str, arch: ArchConfig, weights: dict[str, Any] | None = None) -> Objective:
    """A fresh objective (networks initialised from torch's global generator) by registry name."""
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise EAEError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}") from None
    try:
        return cls(arch, **(weights or {}))
    except TypeError as exc:
        raise EAEError(f"objective {name!r}: {exc}") from None
