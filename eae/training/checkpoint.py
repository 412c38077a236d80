"""Self-describing checkpoints: objective + architecture + weights + params + metrics, loadable
with ``torch.load(weights_only=True)`` (no pickle code runs).

Format ``eae-checkpoint/2`` records the objective (``{"name", "weights"}``, see
``eae.models.objectives``). Checkpoints of format 1 (written before objectives existed) are EAEs:
they load as objective ``eae`` with the weights their params recorded.

``load_checkpoint`` is the one loader of the file kind: whatever is wrong with a file (missing, not a
regular file, not loadable, another format, a record of the wrong type, an architecture that cannot
be built, weights of another shape or with NaN) is one ``EAEError`` line naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path

import torch

from eae.errors import EAEError, StaleArtifact
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


class Checkpoint(dict):
    """A loaded checkpoint: the saved mapping, and ``path``, the file it came from (for error lines)."""

    path: Path | None = None


# The records every checkpoint carries (save_checkpoint writes them), with their types.
RECORDS = {"objective": dict, "arch": dict, "params": dict, "metrics": dict, "state_dict": dict}


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` (no pickle code runs); a
    format-1 checkpoint comes back upgraded to format 2 (objective ``eae``). Checked: the records and
    their types, the objective's name, the architecture, every weight a tensor and finite (see the module)."""
    path = Path(path)
    ckpt = load_payload(path, (FORMAT, FORMAT_V1), "checkpoint", "checkpoint")
    for key, kind in RECORDS.items():
        if key == "objective" and ckpt["format"] == FORMAT_V1:
            continue  # format 1 has none: upgrade_v1 makes it
        if not isinstance(ckpt.get(key), kind):
            got = "missing" if key not in ckpt else f"a {type(ckpt[key]).__name__}"
            raise EAEError(f"{path}: record '{key}' is {got}, expected a {kind.__name__} (not a complete checkpoint)")
    out = Checkpoint(upgrade_v1(ckpt) if ckpt["format"] == FORMAT_V1 else ckpt)
    out.path = path
    objective = out["objective"]
    if not isinstance(objective.get("name"), str) or not isinstance(objective.get("weights", {}), dict | None):
        raise EAEError(f"{path}: record 'objective' must be {{'name': str, 'weights': dict}}, got {objective!r:.120}")
    try:
        ArchConfig.from_dict(out["arch"])
    except (EAEError, TypeError, ValueError) as exc:
        raise EAEError(f"{path}: record 'arch' cannot build the networks: {' '.join(str(exc).split())[:200]}") from None
    for key, value in out["state_dict"].items():
        if not isinstance(value, torch.Tensor):
            raise EAEError(f"{path}: weights '{key}' are a {type(value).__name__}, not a tensor")
        if value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise StaleArtifact(
                f"{path}: weights '{key}' hold {bad} NaN or infinite value(s) of {value.numel()}: the run that wrote "
                "it diverged",
                "checkpoint",
            )
    return out


def require(ckpt: dict, *keys: str) -> None:
    """Refuse a checkpoint that lacks one of ``keys`` (dotted: ``params.seed``), which a stage reads;
    one line naming the file and the key."""
    for key in keys:
        node: object = ckpt
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise StaleArtifact(
                    f"{where(ckpt)}: lacks '{key}' (it was not written by this version's training)", "checkpoint"
                )
            node = node[part]


def where(ckpt: dict) -> str:
    """The file a checkpoint was loaded from, for error lines."""
    return str(getattr(ckpt, "path", None) or "checkpoint")


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


def _shape_mismatch(saved: dict, expected: dict) -> str | None:
    """What keeps ``saved`` weights from loading into a network whose state_dict is ``expected``: the
    first key of another shape (with both shapes), missing or extra, and how many more there are."""
    wrong = [k for k in expected if k in saved and tuple(saved[k].shape) != tuple(expected[k].shape)]
    missing = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]

    def more(items: list) -> str:
        return f" (and {len(items) - 1} more)" if len(items) > 1 else ""

    if wrong:
        k = wrong[0]
        return (
            f"'{k}' has shape {list(saved[k].shape)} in the file but the network needs {list(expected[k].shape)}"
            + more(wrong)
        )
    if missing:
        return f"the network needs '{missing[0]}', which the file lacks{more(missing)}"
    if extra:
        return f"the file has '{extra[0]}', which the network has no place for{more(extra)}"
    return None


def model_from_checkpoint(ckpt: dict) -> Objective:
    """Rebuild the objective and its networks and load the weights (left in eval mode, on CPU). Weights
    that do not fit are one line naming the file, the first key that does not and both shapes."""
    name = ckpt["objective"]["name"]
    try:
        model = build_objective(name, ArchConfig.from_dict(ckpt["arch"]), ckpt["objective"].get("weights"))
    except (EAEError, TypeError, ValueError) as exc:
        raise EAEError(f"{where(ckpt)}: {' '.join(str(exc).split())[:300]}") from None
    try:
        state = type(model).upgrade_state(ckpt["state_dict"])
        problem = _shape_mismatch(state, model.state_dict())
    except (RuntimeError, TypeError, ValueError) as exc:  # an old layout whose tensors do not fit together
        problem = f"its weights cannot be upgraded to today's layout: {' '.join(str(exc).split())[:200]}"
    if problem is None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # e.g. a dtype torch cannot copy
            problem = " ".join(str(exc).split())[:300]
    if problem is not None:
        arch = ", ".join(f"{k} {v}" for k, v in ckpt["arch"].items() if k != "image_shape")
        raise EAEError(
            f"{where(ckpt)}: weights do not fit objective {name!r} with the recorded architecture ({arch}): {problem}"
        )
    return model.eval()
