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
from eae.errors import EAEError

SOURCES: dict[str, Callable[..., dict[str, Split | ImageFiles]]] = {
    "digits": load_digits_source,
    "celeba": load_celeba_source,
    "cifar10": load_cifar10_source,
    "mnist": load_mnist_source,
    "folder": load_folder_source,
}


def load_source(name: str, **kwargs: object) -> dict[str, Split | ImageFiles]:
    if name not in SOURCES:
        raise EAEError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name](**kwargs)
