"""The one reader of dvc.yaml (and of dvc.lock's output hashes): stage names, each stage's outputs
and their options, over one plain YAML load per call (no DVC import: a stage starts with this).

Output paths with DVC's ``${...}`` interpolation are left out: this pipeline declares none, and
they name no file until DVC resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"
#: what reading dvc.yaml raises when it is missing, unreadable, not YAML or not a mapping
READ_ERRORS = (OSError, yaml.YAMLError, AttributeError)


@dataclass(frozen=True)
class Output:
    """One ``outs``/``metrics``/``plots`` entry of a stage."""

    path: str
    cache: bool = True  # False: DVC keeps it in git, not in its cache
    persist: bool = False  # True: DVC does not delete it before the stage runs

    @property
    def deleted_before_run(self) -> bool:
        """Whether DVC deletes it before running the stage (cached, not ``persist``)."""
        return self.cache and not self.persist


def stages(repo: str | Path = ".") -> dict[str, dict]:
    """The ``stages`` mapping of dvc.yaml, in the order written (dvc.yaml lists them topologically).
    Raises one of ``READ_ERRORS``."""
    return (yaml.safe_load((Path(repo) / DVC_YAML).read_text()) or {}).get("stages") or {}


def stage_outputs(stage: dict) -> list[Output]:
    """A stage's outputs as dvc.yaml declares them: outs, then metrics, then plots."""
    found = []
    for kind in ("outs", "metrics", "plots"):
        for entry in stage.get(kind) or []:
            path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            options = options or {}
            if "${" not in path:
                found.append(Output(path, bool(options.get("cache", True)), bool(options.get("persist", False))))
    return found


def outputs(repo: str | Path = ".") -> dict[str, list[Output]]:
    """Every stage's outputs (``stage_outputs``), by stage name."""
    return {name: stage_outputs(stage) for name, stage in stages(repo).items() if isinstance(stage, dict)}


def uncached_outputs(repo: str | Path = ".") -> list[str]:
    """The outputs DVC keeps in git (``cache: false``): metrics and plots of the stages."""
    return [out.path for outs in outputs(repo).values() for out in outs if not out.cache]


def lock_stages(text: str) -> dict[str, dict]:
    """The ``stages`` mapping of dvc.lock's text (raises ``yaml.YAMLError``)."""
    return (yaml.safe_load(text) or {}).get("stages") or {}


def locked_md5(lock_text: str, out: str) -> str | None:
    """The md5 dvc.lock's text records for output ``out`` (None when absent; raises ``yaml.YAMLError``)."""
    for stage in lock_stages(lock_text).values():
        for entry in stage.get("outs") or []:
            if entry.get("path") == out:
                return entry.get("md5")
    return None


def out_md5(out: str, repo: str | Path = ".") -> str | None:
    """The md5 the workspace's dvc.lock records for output ``out`` (None when absent or unreadable)."""
    try:
        return locked_md5((Path(repo) / DVC_LOCK).read_text(), out)
    except (OSError, yaml.YAMLError):
        return None
