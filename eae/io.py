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
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SET_PREFIX = ".eae-set"  # staging folders of atomic_files: .eae-set.<pid>.<random>
COMMIT = ".commit"  # inside a staging folder: the set is complete and being moved into place


def human_bytes(n: float) -> str:
    """``n`` bytes for people, with three significant digits in the largest unit below 1000 of it:
    512 B, 2.05 kB, 18.4 MB, 120 GB (decimal units, as ``df -H``): never "0.00 GB" for a small size."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    i = 0
    while abs(n) >= 1000 and i < len(units) - 1:
        n, i = n / 1000, i + 1
    if i == 0:
        return f"{n:.0f} B"
    return f"{n:.0f} {units[i]}" if abs(n) >= 100 else f"{n:.1f} {units[i]}" if abs(n) >= 10 else f"{n:.2f} {units[i]}"


def _shown(path: str | os.PathLike) -> str:
    """The name a user knows a path by: a file staged by ``atomic_files`` (``<folder>/.eae-set.*/name``)
    is shown as its destination ``<folder>/name``; an ``atomic_path`` temporary as its destination."""
    path = Path(path)
    if path.parent.name.startswith(SET_PREFIX + "."):
        return str(path.parent.parent / path.name)
    return str(path)


def os_error_message(exc: OSError, path: str | os.PathLike | None = None, action: str = "cannot write") -> str:
    """One line for an OSError that names the file and the reason: ``cannot write models/x.onnx: No space
    left on device [ENOSPC]``. ``path`` is the file being handled (used when the error names none, e.g. a
    failed write, or names only a temporary file of it)."""
    name = _shown(path) if path is not None else _shown(exc.filename) if exc.filename else "a file"
    if exc.filename and path is not None and not _is_temporary_of(Path(exc.filename), Path(path)):
        if Path(exc.filename) in Path(path).parents:  # its folder could not be made: name both
            name = f"{name}: {exc.filename}"
        else:  # another file failed (e.g. an input read inside the block)
            name, action = _shown(exc.filename), "cannot use"
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    code = f" [{errno.errorcode[exc.errno]}]" if exc.errno in errno.errorcode else ""
    return f"{action} {name}: {reason}{code}"


def _is_temporary_of(candidate: Path, path: Path) -> bool:
    """Whether ``candidate`` is ``path`` itself, one of its writer's temporaries or inside its staging folder."""
    if candidate == path or candidate.parent == path:
        return True
    if candidate.parent == path.parent and candidate.name.startswith(f".{path.name}."):
        return True
    return candidate.parent.name.startswith(SET_PREFIX + ".")


def disk_full(folder: str | os.PathLike) -> bool:
    """Whether the file system holding ``folder`` has no free block left (some writers, e.g. torch.save,
    report a full disk only as a failed write of their own)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail == 0 or st.f_bfree == 0


def _write_failure(exc: BaseException, path: Path):
    """The one-line EAEError for a failed write of ``path``, or None to let ``exc`` propagate."""
    from eae.errors import EAEError

    if isinstance(exc, OSError) and exc.errno is not None:
        return EAEError(os_error_message(exc, path))
    # Without an errno the writer reported a short write its own way (numpy: "100000 requested and 7664
    # written", torch.save: "unexpected pos"): a full disk when the disk is full, else its own message.
    if isinstance(exc, (OSError, RuntimeError)) and disk_full(path.parent):
        return EAEError(f"cannot write {_shown(path)}: No space left on device [ENOSPC]")
    return None


FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular_file(path: str | os.PathLike, what: str = "file", artifact: str | None = None) -> Path:
    """``path`` if it is a regular file (a link to one is fine), else a one-line EAEError naming it and
    what it is instead: missing, a directory, a FIFO or a device (reading those would block forever or
    never end), unreadable. Checked with ``stat``, so nothing is opened. A missing file that is an
    ``artifact`` (``eae.errors.ARTIFACTS``) is a ``MissingArtifact`` naming it."""
    from eae.errors import EAEError, MissingArtifact

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if artifact is not None:
            raise MissingArtifact(f"missing {what} {path}", artifact) from None
        raise EAEError(f"missing {what} {path}") from None
    except OSError as exc:
        raise EAEError(os_error_message(exc, path, action=f"cannot read {what}")) from None
    for test, kind in FILE_KINDS:
        if test(mode):
            raise EAEError(f"{what} {path} is {kind}, not a regular file")
    if not os.access(path, os.R_OK):
        raise EAEError(f"cannot read {what} {path}: Permission denied [EACCES]")
    return path


def read_regular_bytes(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> bytes:
    """The bytes of a regular file (``check_regular_file``), at most ``limit`` of them (a larger file is a
    one-line EAEError naming its size): a FIFO or device never blocks the caller."""
    from eae.errors import EAEError

    path = check_regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # the file may have been swapped for a FIFO since
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise EAEError(f"{what} {path} is not a regular file")
            data = f.read(limit + 1 if limit is not None else -1)
    except OSError as exc:
        raise EAEError(os_error_message(exc, path, action=f"cannot read {what}")) from None
    if limit is not None and len(data) > limit:
        raise EAEError(
            f"{what} {path} is larger than {human_bytes(limit)} ({human_bytes(os.path.getsize(path))}): not a {what}"
        )
    return data


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix if suffix is not None else path.suffix
        )
    except OSError as exc:
        raise _write_failure(exc, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give outputs normal permissions
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:  # a full disk, a read-only folder: one line naming the output
        failure = _write_failure(exc, path)
        if failure is None:
            raise
        raise failure from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` as a whole."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}."))
    except OSError as exc:
        raise _write_failure(exc, path) from None
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
    except (OSError, RuntimeError) as exc:
        failure = _write_failure(exc, path)
        if failure is None:
            raise
        raise failure from None
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
        recover_sets(folder)
        for p in paths:
            clean_stale(p)
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=f"{SET_PREFIX}.{os.getpid()}."))
    except OSError as exc:
        raise _write_failure(exc, paths[0]) from None
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
    except (OSError, RuntimeError) as exc:  # names the file of the set that failed, else the set
        name = Path(exc.filename) if isinstance(exc, OSError) and exc.filename else None
        known = name is not None and name.parent == stage
        failure = _write_failure(exc, folder / (name.name if known else "{" + ", ".join(names) + "}"))
        if failure is None:
            raise
        raise failure from None
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
        return json.loads(read_regular_bytes(path, "file"))  # a FIFO or device never blocks
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EAEError(f"corrupt JSON in {path}: {exc}") from None


def load_payload(path: str | Path, fmt: str | tuple[str, ...], what: str, artifact: str) -> dict:
    """A dict saved with torch.save, loaded with ``torch.load(weights_only=True)`` (no pickle code
    runs) and checked to carry ``format == fmt`` (or one of them); every failure is one EAEError line
    (a missing file: ``MissingArtifact`` naming ``artifact``)."""
    import torch

    from eae.errors import EAEError

    path = check_regular_file(path, what, artifact)  # a FIFO would block torch.load forever
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise EAEError(f"cannot load {what} {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise EAEError(f"{path} is not an EAE {what} (expected format {' or '.join(map(repr, formats))})")
    return payload
