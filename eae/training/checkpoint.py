"""Self-describing checkpoints: objective + architecture + weights + params + metrics, loadable
with ``torch.load(weights_only=True)`` (no pickle code runs).

Format ``eae-checkpoint/2`` records the objective (``{"name", "weights"}``, see
``eae.models.objectives``). Checkpoints of format 1 (written before objectives existed) are EAEs:
they load as objective ``eae`` with the weights their params recorded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from eae.errors import EAEError
from eae.io import atomic_path, load_payload
from eae.models.networks import ArchConfig
from eae.models.objectives.base import Objective
from eae.models.objectives.registry import build_objective

FORMAT = "eae-checkpoint/2"
FORMAT_V1 = "eae-checkpoint/1"


def save_checkpoint(path: str | Path, model: Objective, params: dict, metrics: dict, extra: dict | None = None) -> None:
    """Save atomically. ``params`` and ``metrics`` must be plain JSON-like data."""
    payload = {
        "format": FORMAT,
        "objective": model.describe(),
        "arch": model.arch.to_dict(),
        "params": params,
        "metrics": metrics,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` (no pickle code runs); a
    format-1 checkpoint comes back upgraded to format 2 (objective ``eae``)."""
    ckpt = load_payload(path, (FORMAT, FORMAT_V1), "checkpoint", "run the train stage first (dvc repro train)")
    return upgrade_v1(ckpt) if ckpt["format"] == FORMAT_V1 else ckpt


def upgrade_v1(ckpt: dict) -> dict:
    """A format-1 checkpoint (an EAE whose code BatchNorm lived inside the encoder) as format 2."""
    params = ckpt.get("params", {})
    train = params.get("train", {})
    weights = {
        "entropy_weight": params.get("entropy_weight", 0.0),
        "entropy_k": train.get("entropy_k", 1),
        "decoder_l2": train.get("decoder_l2", 0.0),
        "spectral_norm": bool(ckpt["arch"].get("spectral_norm", False)),
    }
    state = {
        ("code_norm." + k[len("encoder.code_norm.") :] if k.startswith("encoder.code_norm.") else k): v
        for k, v in ckpt["state_dict"].items()
    }
    return {**ckpt, "format": FORMAT, "objective": {"name": "eae", "weights": weights}, "state_dict": state}


def model_from_checkpoint(ckpt: dict) -> Objective:
    """Rebuild the objective and its networks and load the weights (left in eval mode, on CPU)."""
    model = build_objective(
        ckpt["objective"]["name"], ArchConfig.from_dict(ckpt["arch"]), ckpt["objective"].get("weights")
    )
    try:
        model.load_state_dict(type(model).upgrade_state(ckpt["state_dict"]))
    except RuntimeError as exc:
        raise EAEError(
            f"checkpoint weights do not fit objective {ckpt['objective']['name']!r}: {str(exc).splitlines()[0]}"
        ) from None
    return model.eval()
