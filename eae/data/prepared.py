"""The prepared-data format: uint8 image shards plus a manifest, written by the prepare
stage and read by every later stage.

Layout (``data/prepared/``)::

    manifest.json              {"format", "source", "image_shape": [C, H, W],
                                "splits": {name: {"count", "shards", "labels"}},
                                "bad_images": {"count", "files"}   (image-file sources only),
                                "content_hash"}
    train-000.npy ...          uint8 [n, C, H, W], n <= shard_size
    train-labels.npy           int64 [count] (only for labelled sources)

``eae.data.prepare.write_prepared`` writes it from the splits of ``eae.data.sources`` (both used by the
prepare stage only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError

MANIFEST = "manifest.json"
FORMAT = "eae-prepared/1"


@dataclass
class Split:
    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray | None = None  # int64 [N]


class ShardWriter:
    """Writes one split's images, as they arrive, into shards of at most shard_size images;
    holds at most one shard in memory."""

    def __init__(self, out_dir: Path, name: str, shard_size: int, digest, expected: int):
        self.out_dir, self.name, self.shard_size, self.digest = out_dir, name, shard_size, digest
        self.expected = expected  # upper bound on the images still to come, to size buffers
        self.buf: np.ndarray | None = None
        self.fill = 0
        self.count = 0
        self.shards: list[str] = []

    def add(self, images: np.ndarray) -> None:
        pos = 0
        while pos < len(images):
            if self.buf is None:
                n = min(self.shard_size, max(self.expected - self.count, len(images) - pos))
                self.buf = np.empty((n, *images.shape[1:]), dtype=np.uint8)
            take = min(len(self.buf) - self.fill, len(images) - pos)
            self.buf[self.fill : self.fill + take] = images[pos : pos + take]
            self.fill += take
            self.count += take
            pos += take
            if self.fill == len(self.buf):
                self.flush()

    def flush(self) -> None:
        if self.buf is None or self.fill == 0:
            return
        chunk = self.buf[: self.fill]
        fname = f"{self.name}-{len(self.shards):03d}.npy"
        np.save(self.out_dir / fname, chunk)
        self.digest.update(chunk.reshape(-1).data)
        self.shards.append(fname)
        self.buf, self.fill = None, 0


def write_manifest(out_dir: str | Path, manifest: dict) -> None:
    """Write manifest.json (the last file of a prepared folder: readers need it to find the shards)."""
    (Path(out_dir) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


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
        raise EAEError(
            f"{prepared_dir}: split {split!r} does not match its manifest "
            f"({images.dtype} {images.shape}, expected {entry['count']} x {manifest['image_shape']})"
        )
    return Split(images, labels)


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of a reproducible random split of n items into (rest, held out), the held-out
    part being round(n * test_fraction) items: the sources' train/test split, and the training stage's
    validation split."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n_test >= n:
        raise EAEError(f"test_fraction={test_fraction} leaves an empty split of {n} items")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])
