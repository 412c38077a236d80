"""The workspace the retrain flow (pipelines/orchestration/flows.py) works in: one run at a time, and
only the committed parameters unless asked.

Outputs need no guard here: every output in dvc.yaml is ``persist: true`` (DVC never deletes it before
its stage runs) and each stage replaces its outputs atomically when it succeeds, so a failed or killed
DVC command leaves the last good outputs, which dvc.lock still describes; the check stage refuses bad
parameters before any other stage runs (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from pipelines.config import PARAMS_FILE, ConfigError, Params, load_params, read_params_file

LOCK_FILE = ".dvc/tmp/eae-retrain.lock"
MAX_SHOWN_CHANGES = 3

# Descriptors of the workspace locks this process holds: DVC subprocesses inherit them, so the lock
# stays held while a DVC command runs on even if this process is killed.
_HELD_LOCKS: set[int] = set()


class WorkspaceBusy(RuntimeError):
    """Another retrain holds the workspace lock."""


class ModifiedWorkspace(ConfigError):
    """params.yaml differs from the commit the flow would build on (refused without --from-workspace)."""


@contextlib.contextmanager
def workspace_lock(repo: Path, wait_s: float = 0.0) -> Iterator[None]:
    """An exclusive flock on .dvc/tmp/eae-retrain.lock: two retrains never use DVC in one workspace."""
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


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Nested parameters as dotted keys (``{"train": {"epochs": 2}}`` -> ``{"train.epochs": 2}``)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, object] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def params_changes(repo: str | Path) -> list[str]:
    """The keys of params.yaml whose values differ from HEAD's, as ``key: old -> new`` (comments and
    layout do not count); [] when they are the same, or when there is no commit to compare with."""
    repo = Path(repo)
    proc = subprocess.run(["git", "show", f"HEAD:{PARAMS_FILE}"], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    try:
        committed = flatten(yaml.safe_load(proc.stdout) or {})
    except yaml.YAMLError:
        committed = {}
    now = flatten(read_params_file(repo / PARAMS_FILE))
    return [
        f"{key}: {committed.get(key, '(absent)')} -> {now.get(key, '(absent)')}"
        for key in sorted(set(committed) | set(now))
        if committed.get(key, object()) != now.get(key, object())
    ]


def require_committed_params(repo: str | Path) -> None:
    """ModifiedWorkspace (one line naming the changed keys) when params.yaml differs from HEAD."""
    changes = params_changes(repo)
    if changes:
        shown = "; ".join(changes[:MAX_SHOWN_CHANGES]) + (
            f"; and {len(changes) - MAX_SHOWN_CHANGES} more" if len(changes) > MAX_SHOWN_CHANGES else ""
        )
        raise ModifiedWorkspace(
            f"params.yaml differs from HEAD ({shown}): the retrain flow commits and promotes only the committed "
            "parameters; commit them, restore them (git checkout params.yaml), or pass --from-workspace"
        )
