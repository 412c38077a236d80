"""Session fixtures shared by the whole suite, the Prefect home of each worker and the file order."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Each test process (one per pytest-xdist worker) gets its own Prefect home: flows run without a
# server use an ephemeral one whose SQLite database lives there, and two workers must not share it
# (nor write into the user's ~/.prefect).
_prefect_home = tempfile.mkdtemp(prefix=f"eae-prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
atexit.register(shutil.rmtree, _prefect_home, True)
os.environ["PREFECT_HOME"] = _prefect_home

if "PYTEST_XDIST_WORKER" not in os.environ:  # the first process: the workers inherit its folder
    from tests.helpers.repos import shared_dir

    shared_dir()
else:
    # N workers share the cores: each (and every stage it starts) gets its share of threads, not all
    # of them (torch on 2 cores with 2 workers x 2 threads spends its time spinning). Before torch loads.
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))


def pytest_collection_modifyitems(config, items):
    """Files with end-to-end (slow) tests first, in their order; the quick files after them. The
    suite runs with pytest-xdist handing out whole files in this order (`--dist loadfile
    --no-loadscope-reorder`, Makefile): the long files start at once and the short ones even out
    the workers' ends."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: each file's tests keep their order


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A workspace with every export input and a real export (read-only: copy it with ``workspace``)."""
    from tests.helpers.workspace import export_workspace

    return export_workspace(tmp_path_factory.mktemp("exported"))


@pytest.fixture
def workspace(exported, tmp_path):
    """A private copy of the exported workspace."""
    from tests.helpers.workspace import copy_workspace

    return copy_workspace(exported, tmp_path / "ws")


@pytest.fixture(scope="session")
def pushed_origin(tmp_path_factory) -> tuple[Path, Path]:
    """(repository, remote): `dvc repro` ran in a tiny repository, `dvc push` sent every output to
    the remote (a local folder, its default remote in the committed .dvc/config), and the
    results (dvc.lock, the git-tracked metrics) are committed."""
    from tests.helpers.repos import reproduced_tiny_repo, sh

    root = tmp_path_factory.mktemp("remote")
    repo = reproduced_tiny_repo(root / "origin")
    store = root / "store"
    sh(["dvc", "remote", "add", "-d", "store", str(store)], repo)
    sh(["dvc", "push"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "pipeline results"], repo)
    return repo, store


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory):
    """generator.onnx, decoder.onnx, generator_z.onnx and generator.json of a tiny EAE, and the torch
    modules they came from (``tests.helpers.generator.TinyGenerator``; read-only)."""
    from tests.helpers.generator import export_tiny_generator

    return export_tiny_generator(tmp_path_factory.mktemp("tiny_generator"))
