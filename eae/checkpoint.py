"""Self-describing checkpoints: config + weights + metrics, loadable with weights_only=True."""

from __future__ import annotations

from pathlib import Path

import torch

from eae.errors import EAEError
from eae.io import atomic_path
from eae.model import EAE, EAEConfig

FORMAT = "eae-checkpoint/1"


def save_checkpoint(path: str | Path, model: EAE, params: dict, metrics: dict, extra: dict | None = None) -> None:
    """Save atomically. ``params`` and ``metrics`` must be plain JSON-like data."""
    payload = {
        "format": FORMAT,
        "arch": model.cfg.to_dict(),
        "params": params,
        "metrics": metrics,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_payload(path: str | Path, fmt: str, what: str, missing_hint: str) -> dict:
    """A dict saved with torch.save, loaded with ``torch.load(weights_only=True)`` (no pickle code
    runs) and checked to carry ``format == fmt``; every failure is one EAEError line."""
    path = Path(path)
    if not path.exists():
        raise EAEError(f"missing {what} {path}: {missing_hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise EAEError(f"cannot load {what} {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise EAEError(f"{path} is not an EAE {what} (expected format {fmt!r})")
    return payload


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` (no pickle code runs)."""
    return load_payload(path, FORMAT, "checkpoint", "run the train stage first (dvc repro train)")


def model_from_checkpoint(ckpt: dict) -> EAE:
    """Rebuild the network and load its weights (left in eval mode, on CPU)."""
    model = EAE(EAEConfig.from_dict(ckpt["arch"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
