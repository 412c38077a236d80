"""Keep the workspace's last good outputs when a pipeline run fails: what `make repro` and the
retrain flow (pipelines/orchestration/flows.py) wrap around their DVC commands.

    python -m pipelines.orchestration.workspace repro [DVC REPRO ARGS]     # what `make repro` runs

1. **Validate first.** ``params.yaml`` (with its ``EAE_`` environment overrides and the flow's
   ``--set`` values) is checked before DVC runs: DVC deletes a stage's outputs before running
   it, and every stage reads the whole file, so a bad value would otherwise cost the outputs
   of the first stage DVC reruns.
2. **Snapshot.** Before a DVC command, every output that dvc.yaml declares, and dvc.lock, are
   hard-linked (copied where a link is impossible) under ``.dvc/tmp/eae/snapshot.<pid>.*``:
   no data is copied, and the stages replace outputs with new files (atomic renames), never
   in place, so the links keep the old contents.
3. **Restore on failure.** Every stage whose dvc.lock entry did not change (it did not
   complete) gets its outputs back from the snapshot; stages that completed keep their new
   outputs, which dvc.lock now describes. This is what ``dvc checkout`` would do, but it
   needs no DVC cache (a fresh clone, or a cache that was garbage-collected, has none).
   A snapshot left by a killed run (its process is gone) is restored the same way by the
   next guarded run, which holds the workspace lock first.

Uncached outputs (``dvclive/``, the metrics JSON files) are also ``persist: true`` in dvc.yaml
and written atomically by their stages, so they survive even an unguarded ``dvc repro``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from eae.io import pid_alive, remove_path
from pipelines import dvcfile
from pipelines.config import PARAMS_FILE, ConfigError, Params, load_params

LOCK_FILE = ".dvc/tmp/eae-retrain.lock"
SNAPSHOTS = ".dvc/tmp/eae"
SNAPSHOT_PREFIX = "snapshot"
COMPLETE = ".complete"  # written last into a snapshot: a snapshot without it was interrupted

log = logging.getLogger("eae.workspace")

# Descriptors of the workspace locks this process holds: DVC subprocesses inherit them, so the lock
# stays held while a DVC command runs on even if this process is killed.
_HELD_LOCKS: set[int] = set()


class WorkspaceBusy(RuntimeError):
    """Another retrain (or `make repro`) holds the workspace lock."""


@contextlib.contextmanager
def workspace_lock(repo: Path, wait_s: float = 0.0) -> Iterator[None]:
    """An exclusive flock on .dvc/tmp/eae-retrain.lock: two runs never use DVC in one workspace."""
    path = Path(repo) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    raise WorkspaceBusy(
                        f"another retrain is running in {repo} (lock {path}, held by {holder})"
                    ) from None
                time.sleep(0.5)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        _HELD_LOCKS.add(fh.fileno())
        try:
            yield
        finally:
            _HELD_LOCKS.discard(fh.fileno())
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def held_lock_fds() -> tuple[int, ...]:
    """For ``subprocess.Popen(pass_fds=...)`` of DVC commands run under the workspace lock."""
    return tuple(_HELD_LOCKS)


def validate(repo: str | Path, overrides: dict[str, object] | None = None) -> Params:
    """The workspace's parameters, validated (ConfigError, one line, before DVC touches anything)."""
    return load_params(Path(repo) / PARAMS_FILE, overrides)


# --------------------------------------------------------------------------- outputs and snapshots


def stage_outputs(repo: str | Path) -> dict[str, list[str]]:
    """Every stage's outputs, as dvc.yaml declares them (outs, metrics and plots)."""
    return {name: [out.path for out in outs] for name, outs in dvcfile.outputs(repo).items()}


def _lock_entries(path: Path) -> dict:
    try:
        return dvcfile.lock_stages(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())}") from None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copy2(src, dst)


def _save(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():  # e.g. DVC's symlink cache type: keep the link, its target stays in the cache
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def _same(a: Path, b: Path) -> bool:
    """Whether a and b hold the same files (the same inodes: nothing was replaced)."""
    if a.is_dir() != b.is_dir():
        return False
    if not a.is_dir():
        return os.path.samefile(a, b)
    names_a = sorted(p.relative_to(a) for p in a.rglob("*"))
    names_b = sorted(p.relative_to(b) for p in b.rglob("*"))
    return names_a == names_b and all((a / n).is_dir() or os.path.samefile(a / n, b / n) for n in names_a)


def snapshot(repo: str | Path) -> Path:
    """Hard-link every pipeline output and dvc.lock into a new snapshot folder; returns it."""
    repo = Path(repo)
    root = repo / SNAPSHOTS
    root.mkdir(parents=True, exist_ok=True)
    snap = Path(tempfile.mkdtemp(dir=root, prefix=f"{SNAPSHOT_PREFIX}.{os.getpid()}."))
    for outs in stage_outputs(repo).values():
        for out in outs:
            if os.path.lexists(repo / out):
                _save(repo / out, snap / "outs" / out)
    if (repo / "dvc.lock").exists():
        shutil.copy2(repo / "dvc.lock", snap / "dvc.lock")
    (snap / COMPLETE).touch()
    return snap


def restore(repo: str | Path, snap: Path) -> list[str]:
    """Put back, from ``snap``, the outputs of every stage that did not complete since the snapshot
    (its dvc.lock entry is unchanged); returns the restored paths. Removes the snapshot."""
    repo = Path(repo)
    restored = []
    try:
        if not (snap / COMPLETE).exists():
            return restored
        before, now = _lock_entries(snap / "dvc.lock"), _lock_entries(repo / "dvc.lock")
        for stage, outs in stage_outputs(repo).items():
            if before.get(stage) != now.get(stage):
                continue  # the stage completed: dvc.lock describes its new outputs
            for out in outs:
                saved, dst = snap / "outs" / out, repo / out
                if not os.path.lexists(saved) or (os.path.lexists(dst) and _same(saved, dst)):
                    continue
                aside = dst.with_name(f".{dst.name}.{os.getpid()}.replaced")
                if os.path.lexists(dst):
                    os.replace(dst, aside)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(saved, dst)
                remove_path(aside)
                restored.append(out)
    finally:
        shutil.rmtree(snap, ignore_errors=True)
    return restored


def recover(repo: str | Path) -> list[str]:
    """Restore the snapshots that killed runs left (call with the workspace lock held)."""
    root = Path(repo) / SNAPSHOTS
    restored: list[str] = []
    for snap in sorted(root.glob(f"{SNAPSHOT_PREFIX}.*")) if root.is_dir() else []:
        pid = snap.name.split(".")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            found = restore(repo, snap)
            if found:
                log.warning("restored %s from the snapshot of an interrupted run", ", ".join(found))
            restored += found
    return restored


@contextlib.contextmanager
def guarded(repo: str | Path) -> Iterator[None]:
    """Snapshot the outputs; if the block fails (or this process is killed: see ``recover``), put
    back those of the stages that did not complete. Hold the workspace lock around it."""
    repo = Path(repo)
    recover(repo)
    snap = snapshot(repo)
    try:
        yield
    except BaseException:
        restored = restore(repo, snap)
        if restored:
            log.warning("a stage failed: restored the last good %s", ", ".join(restored))
        raise
    shutil.rmtree(snap, ignore_errors=True)


# --------------------------------------------------------------------------- make repro


def repro(repo: Path, dvc_args: list[str]) -> int:
    """Validate, then ``dvc repro ARGS`` under the workspace lock and a snapshot."""
    validate(repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with workspace_lock(repo):
        try:
            with guarded(repo):
                code = subprocess.run(
                    ["dvc", "repro", *dvc_args], cwd=repo, env=env, pass_fds=held_lock_fds()
                ).returncode
                if code != 0:
                    raise subprocess.CalledProcessError(code, "dvc repro")
        except subprocess.CalledProcessError as exc:
            return exc.returncode
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "repro":
        print("usage: python -m pipelines.orchestration.workspace repro [DVC REPRO ARGS]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return repro(Path.cwd(), argv[1:])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkspaceBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
