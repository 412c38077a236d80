"""Datasets as uint8 shards: sources, preprocessing and the prepared-data format.

Prepared layout (``data/prepared/``)::

    manifest.json              {"format", "source", "image_shape": [C, H, W],
                                "splits": {name: {"count", "shards", "labels"}},
                                "content_hash"}
    train-000.npy ...          uint8 [n, C, H, W]
    train-labels.npy           int64 [count] (only for labelled sources)

A *source* is a function returning ``{split_name: Split}``; register new ones in
``SOURCES`` (paper datasets plug in here).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from eae.errors import EAEError

MANIFEST = "manifest.json"
FORMAT = "eae-prepared/1"


@dataclass
class Split:
    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray | None = None  # int64 [N]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Map floats in [0, 1] to uint8 with rounding (values outside are clipped)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize float [N, C, H, W] images in [0, 1] to size x size (bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    if images.shape[-2:] == (size, size):
        return images
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    out = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).numpy()


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a reproducible random train/test split of n items."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n_test >= n:
        raise EAEError(f"test_fraction={test_fraction} leaves an empty split of {n} items")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def load_digits_source(*, image_size: int, test_fraction: float, seed: int, **_: object) -> dict[str, Split]:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16), scaled to [0, 1],
    resized to image_size, with a seeded train/test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float64) / 16.0)[:, None]  # [N, 1, 8, 8]
    images = to_uint8(resize(images, image_size))
    labels = bunch.target.astype(np.int64)
    train, test = seeded_split(len(images), test_fraction, seed)
    return {"train": Split(images[train], labels[train]), "test": Split(images[test], labels[test])}


SOURCES: dict[str, Callable[..., dict[str, Split]]] = {"digits": load_digits_source}


def load_source(name: str, **kwargs: object) -> dict[str, Split]:
    if name not in SOURCES:
        raise EAEError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name](**kwargs)


def write_prepared(out_dir: str | Path, splits: dict[str, Split], source: str, shard_size: int) -> dict:
    """Write splits as uint8 .npy shards plus manifest.json into out_dir (which must exist)."""
    out_dir = Path(out_dir)
    digest = hashlib.sha256()
    manifest: dict = {"format": FORMAT, "source": source, "splits": {}}
    shapes = {tuple(s.images.shape[1:]) for s in splits.values()}
    if len(shapes) != 1:
        raise EAEError(f"splits have different image shapes: {sorted(shapes)}")
    manifest["image_shape"] = list(shapes.pop())
    for name, split in splits.items():
        if split.images.dtype != np.uint8 or split.images.ndim != 4 or len(split.images) == 0:
            raise EAEError(f"split {name!r}: expected non-empty uint8 [N, C, H, W], got "
                           f"{split.images.dtype} {split.images.shape}")
        shards = []
        for i, start in enumerate(range(0, len(split.images), shard_size)):
            fname = f"{name}-{i:03d}.npy"
            chunk = np.ascontiguousarray(split.images[start:start + shard_size])
            np.save(out_dir / fname, chunk)
            digest.update(chunk.tobytes())
            shards.append(fname)
        entry = {"count": int(len(split.images)), "shards": shards, "labels": None}
        if split.labels is not None:
            entry["labels"] = f"{name}-labels.npy"
            np.save(out_dir / entry["labels"], split.labels.astype(np.int64))
            digest.update(split.labels.astype(np.int64).tobytes())
        manifest["splits"][name] = entry
    manifest["content_hash"] = "sha256:" + digest.hexdigest()
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(prepared_dir: str | Path) -> dict:
    path = Path(prepared_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise EAEError(f"missing {path}: run the prepare stage first (dvc repro prepare)") from None
    except json.JSONDecodeError as exc:
        raise EAEError(f"corrupt {path}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise EAEError(f"{path}: unknown format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def read_split(prepared_dir: str | Path, split: str) -> Split:
    """Load one split of a prepared dataset (all shards concatenated)."""
    prepared_dir = Path(prepared_dir)
    manifest = read_manifest(prepared_dir)
    if split not in manifest["splits"]:
        raise EAEError(f"{prepared_dir}: no split {split!r}; has {sorted(manifest['splits'])}")
    entry = manifest["splits"][split]
    try:
        parts = [np.load(prepared_dir / f, allow_pickle=False) for f in entry["shards"]]
        labels = np.load(prepared_dir / entry["labels"], allow_pickle=False) if entry.get("labels") else None
    except (OSError, ValueError) as exc:
        raise EAEError(f"{prepared_dir}: cannot read split {split!r}: {exc}") from None
    images = np.concatenate(parts)
    if images.dtype != np.uint8 or list(images.shape[1:]) != manifest["image_shape"] or len(images) != entry["count"]:
        raise EAEError(f"{prepared_dir}: split {split!r} does not match its manifest "
                       f"({images.dtype} {images.shape}, expected {entry['count']} x {manifest['image_shape']})")
    return Split(images, labels)
