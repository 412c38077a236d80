"""Atomic file output and JSON helpers.

Every output is written to a temporary file beside its destination and renamed
into place, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it to ``path`` on success.

    The temporary file keeps ``path``'s suffix (or ``suffix``) because some
    writers (numpy, torch.onnx) choose the format by extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give outputs normal permissions
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, turning a missing or corrupt file into one clear error."""
    from eae.errors import EAEError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EAEError(f"missing file {path}") from None
    except json.JSONDecodeError as exc:
        raise EAEError(f"corrupt JSON in {path}: {exc}") from None


def load_payload(path: str | Path, fmt: str | tuple[str, ...], what: str, missing_hint: str) -> dict:
    """A dict saved with torch.save, loaded with ``torch.load(weights_only=True)`` (no pickle code
    runs) and checked to carry ``format == fmt`` (or one of them); every failure is one EAEError line."""
    import torch

    from eae.errors import EAEError

    path = Path(path)
    if not path.exists():
        raise EAEError(f"missing {what} {path}: {missing_hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise EAEError(f"cannot load {what} {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise EAEError(f"{path} is not an EAE {what} (expected format {' or '.join(map(repr, formats))})")
    return payload
