"""Resumable training state: everything needed to continue an interrupted run bit-for-bit on CPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from eae.io import atomic_path

FORMAT = "eae-train-state/1"


def fingerprint(config: dict) -> str:
    """A stable hash of the settings a resumed run must share with the interrupted one."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def save_state(
    path: str | Path,
    *,
    fingerprint: str,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    shuffle: torch.Generator,
    history: dict,
    best: dict | None = None,
) -> None:
    """Write the state after ``epoch`` completed epochs, atomically (a kill mid-write leaves the old one).
    ``best``: the best-validation epoch so far ({"epoch", "val", "state"}), when the run selects by it."""
    state = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "shuffle_rng": shuffle.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": history,
        "best": best,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path, expected_fingerprint: str) -> tuple[dict | None, str]:
    """(state, "") if a readable state for the same configuration exists, else (None, why not)."""
    path = Path(path)
    if not path.exists():
        return None, "no saved state"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file means starting over, never crashing
        return None, f"unreadable ({type(exc).__name__})"
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None, "unknown format"
    if state.get("fingerprint") != expected_fingerprint:
        return None, "saved for other parameters or data"
    return state, ""


def restore(
    state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, shuffle: torch.Generator
) -> None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    shuffle.set_state(state["shuffle_rng"])
    torch.set_rng_state(state["torch_rng"])
