"""Each paper config (configs/*.yaml) runs `dvc repro` on a fixture with the real on-disk layout:
paper-size networks, one tiny epoch. CelebA runs the whole pipeline (Inception features with random
weights, the ONNX generator, the report); CIFAR-10 and MNIST run prepare, train and fit_density
(what differs between configs: layouts, shapes, networks, decoder L2; the later stages are the
same code, and Inception on CPU is most of their time)."""

import gzip
import json
import pickle

import numpy as np
import onnxruntime as ort
import pytest
import torch

from eae.evaluation.inception import FID_WEIGHTS_FILENAME
from eae.evaluation.results import read_results
from tests.helpers.datasets import cifar_batch, idx_bytes, jpeg_bytes
from tests.helpers.inception import random_fid_inception_state
from tests.helpers.repos import make_tiny_repo, repo_env, sh

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


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("torch-home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(random_fid_inception_state(), home / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME)
    return home


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_paper_config_reproduces_on_its_fixture(name, tmp_path, torch_home):
    make_fixture, shape = FIXTURES[name]
    overrides = {**SHRINK, "data": {"root": f"data/raw/{name}"}}
    repo = tmp_path / "repo"
    repo.mkdir()
    make_fixture(repo / "data" / "raw" / name)
    repo = make_tiny_repo(repo, overrides, params_file=f"configs/{name}.yaml", tiny=False)
    env = {**repo_env(), "TORCH_HOME": str(torch_home)}
    whole = name == "celeba"
    sh(["dvc", "repro"] if whole else ["dvc", "repro", "fit_density"], repo, env)

    manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
    assert manifest["source"] == name and manifest["image_shape"] == shape
    if name == "celeba":
        assert manifest["splits"]["train"]["count"] == 19 and manifest["bad_images"]["count"] == 1
        assert set(manifest["splits"]) == {"train", "valid", "test"}
    if whole:
        results = read_results(repo / "reports/fid.json")
        assert results.feature_extractor == "inception" and results.protocol["inception_dims"] == 64
        assert set(results.metrics["fd"]) == {"isotropic", "mvg", "gmm", "reconstruction"}
        assert all(np.isfinite(v) for v in results.metrics["fd"].values())
        assert (repo / "reports/index.html").stat().st_size > 0
        card = json.loads((repo / "models/generator.json").read_text())
        assert card["image_shape"] == shape and card["dataset"] == name
        session = ort.InferenceSession(str(repo / "models/generator.onnx"), providers=["CPUExecutionProvider"])
        d = card["latent_dim"]
        images = session.run(None, {"noise": np.zeros((2, d), np.float32), "u": np.zeros(2, np.float32)})[0]
        assert list(images.shape) == [2, *shape]
    assert list((repo / "dvclive/plots/images/samples").glob("epoch_*.png"))
    assert (repo / "models/density.npz").stat().st_size > 0
