"""MNIST (torchvision's idx files, optionally gzipped): 28x28 zero-padded to ``image_size``."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from eae.data.prepared import Split
from eae.data.sources.common import torchvision_download
from eae.errors import EAEError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_mnist_file(root: Path, name: str) -> Path | None:
    for d in (root / "MNIST" / "raw", root):
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes (MNIST's format; gzipped when the name ends in .gz)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise EAEError(f"cannot read {path}: {exc}") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise EAEError(f"{path}: not an idx file of unsigned bytes with {ndim} dimension(s)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != math.prod(dims):
        raise EAEError(f"{path}: header says {dims} = {math.prod(dims)} values, the file holds {data.size}")
    return data.reshape(dims)


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad uint8 [N, H, W] to [N, 1, size, size], the image in the centre
    (an odd margin puts the extra row/column at the bottom/right)."""
    n, h, w = images.shape
    if h > size or w > size:
        raise EAEError(f"cannot pad {h}x{w} images to {size}x{size}: data.image_size must be >= {max(h, w)}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((n, 1, size, size), dtype=np.uint8)
    out[:, 0, top : top + h, left : left + w] = images
    return out


def load_mnist_source(
    *, root: str | Path, image_size: int = 32, download: bool = False, **_: object
) -> dict[str, Split]:
    """MNIST from torchvision's raw idx files: 60,000 train and 10,000 test digits with
    labels, 28x28 zero-padded to image_size (32, as in the paper; no resizing)."""
    root = Path(root)
    names = [f for pair in MNIST_FILES.values() for f in pair]
    if download and any(_find_mnist_file(root, f) is None for f in names):

        def fetch() -> None:
            from torchvision.datasets import MNIST

            MNIST(str(root), train=True, download=True)

        torchvision_download("mnist", root, fetch, "MNIST/raw/*-ubyte[.gz]")
    if not root.is_dir():
        raise EAEError(
            f"data.root {root} does not exist (torchvision's MNIST/raw/ idx files; or set data.download: true)"
        )
    splits = {}
    for split, (image_file, label_file) in MNIST_FILES.items():
        paths = [_find_mnist_file(root, f) for f in (image_file, label_file)]
        for f, path in zip((image_file, label_file), paths):
            if path is None:
                raise EAEError(f"missing {root / 'MNIST' / 'raw' / f}[.gz] (torchvision's MNIST layout)")
        images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
        if len(images) != len(labels):
            raise EAEError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
        splits[split] = Split(pad_to(images, image_size), labels.astype(np.int64))
    return splits
