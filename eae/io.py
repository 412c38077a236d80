"""Atomic file output and JSON helpers.

Every output is written to a temporary file beside its destination and renamed
into place, so an interrupted run never leaves a half-written file behind.

Temporary names carry the writer's process id (``.<name>.<pid>.<random>``); a
temporary left by a killed writer (its pid no longer runs) is removed the next time
the same output is written, so they never pile up. ``atomic_files`` writes several
files as one set: all of them are replaced, or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SET_PREFIX = ".eae-set"  # staging folders of atomic_files: .eae-set.<pid>.<random>
COMMIT = ".commit"  # inside a staging folder: the set is complete and being moved into place


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this machine (a zombie counts as dead)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, ValueError):
        return False
    try:  # Linux: a killed child its parent has not reaped yet is a zombie
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stale(entry: str, prefix: str) -> bool:
    """``entry`` is ``<prefix>.<pid>.<anything>`` and that pid no longer runs."""
    if not entry.startswith(prefix + "."):
        return False
    pid = entry[len(prefix) + 1 :].split(".", 1)[0]
    return pid.isdigit() and not pid_alive(int(pid))


def remove_path(path: Path) -> None:
    """Remove a file, link or folder (what is missing is fine)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale(path: str | os.PathLike) -> None:
    """Remove what killed writers of ``path`` left beside it (temporary files and folders of
    ``atomic_path``/``atomic_dir``); if ``path`` itself is missing because its writer died between
    moving the old version aside and the new one in, the old version comes back."""
    path = Path(path)
    try:
        entries = os.listdir(path.parent)
    except FileNotFoundError:
        return
    prefix = f".{path.name}"
    for entry in entries:
        if not _stale(entry, prefix):
            continue
        stale = path.parent / entry
        if entry.endswith(".old") and stale.is_dir() and not os.path.lexists(path):
            os.replace(stale, path)  # roll back: the previous complete version
        else:
            remove_path(stale)


def recover_sets(folder: str | os.PathLike) -> None:
    """Finish or discard the file sets that killed ``atomic_files`` writers left in ``folder``:
    a staging folder with its commit marker is moved into place (its files are complete),
    one without is removed (the old set stays)."""
    folder = Path(folder)
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return
    for entry in entries:
        if _stale(entry, SET_PREFIX):
            stage = folder / entry
            if (stage / COMMIT).is_file():
                _move_set(stage, folder, (stage / COMMIT).read_text().split("\n"))
            shutil.rmtree(stage, ignore_errors=True)


def _move_set(stage: Path, folder: Path, names: list[str]) -> None:
    for name in filter(None, names):
        if (stage / name).exists():
            os.replace(stage / name, folder / name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it to ``path`` on success.

    The temporary file keeps ``path``'s suffix (or ``suffix``) because some
    writers (numpy, torch.onnx) choose the format by extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix if suffix is not None else path.suffix
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
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        old = None
        if os.path.lexists(path):
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            remove_path(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            remove_path(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_files(paths: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """Write several files as one set: on success all of them are replaced, otherwise none.

    Yields one staging path per destination, with the destination's file name, in a hidden
    folder beside them (``.eae-set.<pid>.<random>``; the destinations must share one folder).
    When the block succeeds, every staged file must exist; a commit marker is written, then
    each file is renamed over its destination. A writer killed before the marker leaves the
    old set, and the next ``atomic_files`` call in that folder removes its staging folder;
    killed during the renames, the next call finishes them (the staged files are complete).
    """
    paths = [Path(p) for p in paths]
    folders = {p.parent.resolve() for p in paths}
    names = [p.name for p in paths]
    if not paths or len(folders) != 1 or len(set(names)) != len(names) or COMMIT in names:
        raise ValueError(f"atomic_files needs distinct file names in one folder, got {[str(p) for p in paths]}")
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    recover_sets(folder)
    for p in paths:
        clean_stale(p)
    stage = Path(tempfile.mkdtemp(dir=folder, prefix=f"{SET_PREFIX}.{os.getpid()}."))
    committed = False
    try:
        staged = [stage / name for name in names]
        yield staged
        missing = [p.name for p in staged if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"atomic_files: {', '.join(missing)} not written; nothing replaced")
        for p in staged:
            os.chmod(p, 0o666 & ~_umask())
        (stage / COMMIT).write_text("\n".join(names) + "\n")
        committed = True
        _move_set(stage, folder, names)
    finally:
        if not committed or not any((stage / name).exists() for name in names):
            shutil.rmtree(stage, ignore_errors=True)


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
