"""Each paper config (configs/*.yaml) runs `dvc repro fit_density` on a fixture with the real on-disk
layout: paper-size networks, one tiny epoch; prepare, train and fit_density are what differs between
configs (layouts, shapes, networks, decoder L2, spectral norm). The later stages are the same code, and
Inception and the export of a paper-size network on CPU are most of their time: the CelebA config's whole
pipeline (Inception features with random weights, the scores, the ONNX generator, the card, the report)
runs in tests/scripts/test_device_check.py, whose CPU fallback reproduces configs/celeba.yaml on a
synthetic folder of the same layout."""

import gzip
import json
import pickle

import numpy as np
import pytest

from tests.helpers.datasets import cifar_batch, idx_bytes, jpeg_bytes
from tests.helpers.repos import make_tiny_repo, sh

pytestmark = pytest.mark.slow

SHRINK = {  # the paper's architecture and settings, with a tiny run
    "train": {"epochs": 1, "batch_size": 8, "sample_every": 1, "device": "cpu"},
    "density": {"gmm_components": 2},
    "eval": {"n_samples": 24, "batch_size": 24, "inception_dims": 64, "device": "cpu"},
    "report": {"n_images": 8},
}


def celeba_fixture(root):
    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    lines = []
    for i in range(1, 31):
        data = jpeg_bytes(rng)
        (root / "img_align_celeba" / f"{i:06d}.jpg").write_bytes(data[:300] if i == 7 else data)  # one corrupt
        lines.append(f"{i:06d}.jpg {0 if i <= 20 else (1 if i <= 24 else 2)}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


def cifar10_fixture(root):
    rng = np.random.default_rng(1)
    (root / "cifar-10-batches-py").mkdir(parents=True)
    batches = {f"data_batch_{i}": cifar_batch(rng, 5, 5 * i) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(rng, 10, 100)
    for name, batch in batches.items():
        (root / "cifar-10-batches-py" / name).write_bytes(pickle.dumps(batch, protocol=2))


def mnist_fixture(root):
    rng = np.random.default_rng(2)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 24), ("t10k", 10)):
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        )
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes((np.arange(n) % 10).astype(np.uint8)))
        )


FIXTURES = {
    "celeba": (celeba_fixture, [3, 64, 64]),
    "cifar10": (cifar10_fixture, [3, 32, 32]),
    "mnist": (mnist_fixture, [1, 32, 32]),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_paper_config_reproduces_on_its_fixture(name, tmp_path):
    make_fixture, shape = FIXTURES[name]
    overrides = {**SHRINK, "data": {"root": f"data/raw/{name}"}}
    repo = tmp_path / "repo"
    repo.mkdir()
    make_fixture(repo / "data" / "raw" / name)
    repo = make_tiny_repo(repo, overrides, params_file=f"configs/{name}.yaml", tiny=False)
    sh(["dvc", "repro", "fit_density"], repo)

    manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
    assert manifest["source"] == name and manifest["image_shape"] == shape
    if name == "celeba":
        assert manifest["splits"]["train"]["count"] == 19 and manifest["bad_images"]["count"] == 1
        assert set(manifest["splits"]) == {"train", "valid", "test"}
    assert list((repo / "dvclive/plots/images/samples").glob("epoch_*.png"))
    assert (repo / "models/density.npz").stat().st_size > 0
