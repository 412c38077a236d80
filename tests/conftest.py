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


# How long each long file took in one `make test` (pytest --durations, summed per file, issue 31; on a
# busy 2-core machine, so only their order matters). pytest-xdist hands out whole files in the collection
# order (`--dist loadfile --no-loadscope-reorder`, Makefile), so the longest start first and the short
# ones even out the workers' ends (longest-first scheduling). The first two differ in whether they need
# the session's reproduced tiny repository (tests.helpers.repos.reproduced_tiny_repo): one worker builds
# it while the other runs a long file that does not wait for it. A file not listed counts as SLOW_FILE_S
# when it has a slow test, else as 0 (its place in the collection order).
FILE_SECONDS = {
    "tests/test_readme.py": 229,  # builds the reproduced repository
    "tests/pipelines/test_export_reliability.py": 208,  # does not need it
    "tests/pipelines/orchestration/test_workspace_reliability.py": 170,
    "tests/scripts/test_device_check.py": 167,
    "tests/test_main_path.py": 163,
    "tests/pipelines/orchestration/test_prefect_server.py": 159,
    "tests/pipelines/test_train_reliability.py": 151,
    "tests/pipelines/test_fit_density.py": 148,
    "tests/test_pipeline_smoke.py": 146,
    "tests/pipelines/orchestration/test_flows.py": 145,
    "tests/pipelines/orchestration/test_table1.py": 132,
    "tests/pipelines/orchestration/test_dvc_remote.py": 123,
    "tests/test_paper_configs.py": 119,
    "tests/eae/reporting/test_report.py": 108,
    "tests/pipelines/test_train_ddp.py": 108,
    "tests/pipelines/orchestration/test_prefect_workpool.py": 96,
    "tests/pipelines/test_train_resume.py": 88,
    "tests/pipelines/test_train_selection.py": 82,
    "tests/test_packaging.py": 72,
    "tests/pipelines/test_feature_stats.py": 69,
    "tests/eae/evaluation/test_inception.py": 68,
    "tests/eae/evaluation/test_fid.py": 50,
    "tests/pipelines/test_config_reliability.py": 49,
    "tests/eae/export/test_onnx.py": 40,
    "tests/eae/training/test_seed.py": 35,
}
SLOW_FILE_S = 30


def pytest_collection_modifyitems(config, items):
    """Whole files, longest first (FILE_SECONDS); each file's tests keep their order."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def seconds(item) -> float:
        name = item.path.relative_to(config.rootpath).as_posix()
        return FILE_SECONDS.get(name, SLOW_FILE_S if item.path in slow_files else 0)

    items.sort(key=lambda item: -seconds(item))  # stable: files stay whole, equal ones in collection order


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
