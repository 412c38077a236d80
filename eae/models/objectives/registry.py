"""``model.objective`` value -> objective class, and ``build_objective``."""

from __future__ import annotations

from typing import Any

from eae.errors import EAEError
from eae.models.networks import ArchConfig
from eae.models.objectives.ae import AE, AEL2, RAE, RAEGP, RAEL2, RAESN
from eae.models.objectives.base import Objective
from eae.models.objectives.eae import EAE
from eae.models.objectives.vae import CVVAE, VAE, TwoStageVAE
from eae.models.objectives.wae import WAE

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (EAE, AE, AEL2, RAE, RAEL2, RAEGP, RAESN, VAE, CVVAE, WAE, TwoStageVAE)
}


def build_objective(name: str, arch: ArchConfig, weights: dict[str, Any] | None = None) -> Objective:
    """A fresh objective (networks initialised from torch's global generator) by registry name."""
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise EAEError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}") from None
    try:
        return cls(arch, **(weights or {}))
    except (TypeError, ValueError) as exc:
        raise EAEError(f"objective {name!r}: {exc}") from None
