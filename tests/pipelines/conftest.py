"""A tiny repository whose pipeline ran and was pushed to a local DVC remote (shared by the remote
and work-pool tests, which only need its results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import reproduced_tiny_repo, sh


@pytest.fixture(scope="session")
def pushed_origin(tmp_path_factory) -> tuple[Path, Path]:
    """(repository, remote): `dvc repro` ran in the repository, `dvc push` sent every output to
    the remote (a local folder, its default remote in the committed .dvc/config), and the
    results (dvc.lock, the git-tracked metrics) are committed."""
    root = tmp_path_factory.mktemp("remote")
    repo = reproduced_tiny_repo(root / "origin")
    store = root / "store"
    sh(["dvc", "remote", "add", "-d", "store", str(store)], repo)
    sh(["dvc", "push"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "pipeline results"], repo)
    return repo, store
