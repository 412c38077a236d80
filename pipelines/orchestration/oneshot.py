"""What the one-shot ``python -m pipelines.orchestration.flows retrain`` adds around the flow: a Prefect
backend of its own, what it says before it starts (it may commit and tag) and the summary it prints."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipelines.orchestration import registry


@contextlib.contextmanager
def own_prefect_settings() -> Iterator[None]:
    """The one-shot run's Prefect backend: unless a Prefect API is configured (PREFECT_API_URL), a
    temporary Prefect home with its own SQLite database for the temporary server, so no two runs share
    (and lock) ~/.prefect/prefect.db; removed at exit, after the server stops. (Analytics: set above.)"""
    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_HOME,
        get_current_settings,
        temporary_settings,
    )

    if get_current_settings().api.url:
        yield
        return
    home = Path(tempfile.mkdtemp(prefix="eae-prefect-"))
    atexit.register(shutil.rmtree, home, True)  # registered first: runs after the temporary server's stop
    updates = {PREFECT_HOME: home, PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{home / 'prefect.db'}"}
    with temporary_settings(updates=updates):
        yield


def announcement(repo: str | Path) -> str:
    """What ``retrain`` says before it starts, when it may promote."""
    names = " and ".join(registry.ARTIFACTS)
    return (
        f"retrain: if the new generator is promoted, this commits dvc.lock, params.yaml and the results in "
        f"{Path(repo).resolve()} and makes 4 git tags (a version and stage {registry.STAGE} of {names}); "
        "--no-promote only rebuilds"
    )


def summary(result: dict) -> list[str]:
    """The lines ``retrain`` prints when it is done: what ran, the decision, the commit and the tags."""
    lines = [f"retrain: ran dvc repro of {', '.join(result['stages'])} (DVC skips the stages that are up to date)"]
    decision = result["promotion"]
    if decision is None:
        return [*lines, "promotion: not evaluated (--no-promote): nothing committed, no tags"]
    lines.append(f"promotion: {'promoted' if decision['promoted'] else 'not promoted'} ({decision['reason']})")
    outcome = decision.get("registry")
    if outcome is None:
        lines.append("registry: nothing committed, no tags")
    elif not outcome["registered"]:
        lines.append(f"registry: not registered ({outcome['reason']}): nothing committed, no tags")
    else:
        made = "committed" if outcome["committed"] else "no commit needed: HEAD already pins the generator,"
        lines.append(f"registry: {made} {outcome['commit']}")
        lines.append(f"registry: tags made: {', '.join(outcome['tags']) or 'none (already registered)'}")
    return lines
