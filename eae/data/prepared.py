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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError, MissingArtifact
from eae.io import check_regular_file, read_regular_bytes

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


_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.npy$")  # a shard or label file: inside the folder
MAX_CLASSES = 65_536  # labels index a classifier's outputs: larger values are not class indices


def _manifest_problem(manifest: object) -> str | None:
    """What is wrong with a manifest's structure (None: nothing), naming the field."""
    if not isinstance(manifest, dict):
        return f"expected a JSON object, got {type(manifest).__name__}"
    if manifest.get("format") != FORMAT:
        return f"unknown format {manifest.get('format')!r}, expected {FORMAT!r}"
    for key in ("source", "content_hash"):
        if not isinstance(manifest.get(key), str):
            return f"'{key}' must be a string, got {manifest.get(key)!r:.80}"
    shape = manifest.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(n) is int and n >= 1 for n in shape)):
        return f"'image_shape' must be [C, H, W] of positive integers, got {shape!r:.80}"
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not splits:
        return f"'splits' must be a non-empty object, got {splits!r:.80}"
    for name, entry in splits.items():
        where = f"'splits.{name}"
        if not isinstance(entry, dict):
            return f"{where}' must be an object"
        if type(entry.get("count")) is not int or entry["count"] < 0:
            return f"{where}.count' must be a non-negative integer, got {entry.get('count')!r:.80}"
        shards = entry.get("shards")
        if not isinstance(shards, list) or not all(isinstance(f, str) and _FILE_NAME.match(f) for f in shards):
            return f"{where}.shards' must list .npy file names inside the folder, got {shards!r:.80}"
        labels = entry.get("labels")
        if labels is not None and not (isinstance(labels, str) and _FILE_NAME.match(labels)):
            return f"{where}.labels' must be null or a .npy file name inside the folder, got {labels!r:.80}"
    return None


def read_manifest(prepared_dir: str | Path) -> dict:
    """The manifest of a prepared folder, checked (its fields, their types, shard names that stay inside the
    folder); every problem is one EAEError line naming the file and the field."""
    path = Path(prepared_dir) / MANIFEST
    try:
        data = read_regular_bytes(path, "manifest")
    except EAEError as exc:
        if str(exc).startswith("missing "):
            raise MissingArtifact(f"missing {path}", "prepared") from None
        raise
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EAEError(f"corrupt {path}: {' '.join(str(exc).split())[:200]}") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise EAEError(f"{path}: {problem}")
    return manifest


def _load_array(path: Path) -> np.ndarray:
    try:
        a = np.load(check_regular_file(path, "shard"), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise EAEError(f"cannot read shard {path} (corrupt): {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(a, np.ndarray):
        raise EAEError(f"{path} is an .npz archive, not one .npy array")
    return a


def _split_entry(prepared_dir: Path, split: str) -> tuple[dict, dict]:
    manifest = read_manifest(prepared_dir)
    if split not in manifest["splits"]:
        raise EAEError(f"{prepared_dir}: no split {split!r}; has {sorted(manifest['splits'])}")
    return manifest, manifest["splits"][split]


def split_shards(prepared_dir: str | Path, split: str) -> Iterator[np.ndarray]:
    """One split's images shard by shard, in order: uint8 [n, C, H, W] arrays, one in memory at a time
    (what a pass over a large split needs instead of ``read_split``); each shard checked against the
    manifest (dtype, shape, count), every problem one EAEError line naming the file."""
    prepared_dir = Path(prepared_dir)
    manifest, entry = _split_entry(prepared_dir, split)
    shape = manifest["image_shape"]
    count = 0
    for name in entry["shards"]:
        a = _load_array(prepared_dir / name)
        if a.dtype != np.uint8 or a.ndim != 4 or list(a.shape[1:]) != shape:
            raise EAEError(
                f"{prepared_dir / name}: {a.dtype} {list(a.shape)}, but {MANIFEST} says uint8 [n, {', '.join(map(str, shape))}]"
            )
        count += len(a)
        if count > entry["count"]:
            break
        yield a
    if count != entry["count"]:
        raise EAEError(
            f"{prepared_dir}: split {split!r} has {'more than ' if count > entry['count'] else ''}{count} images "
            f"in its shards, but {MANIFEST} says {entry['count']}"
        )


def read_split(prepared_dir: str | Path, split: str) -> Split:
    """Load one split of a prepared dataset: its shards (checked by ``split_shards``) copied one by one into
    one array, so the peak memory is the split plus one shard (not twice the split, as concatenating the
    loaded shards was); the labels checked against the manifest (integers, count, class range)."""
    prepared_dir = Path(prepared_dir)
    manifest, entry = _split_entry(prepared_dir, split)
    images = np.empty((entry["count"], *manifest["image_shape"]), dtype=np.uint8)
    pos = 0
    for shard in split_shards(prepared_dir, split):
        images[pos : pos + len(shard)] = shard
        pos += len(shard)
    labels = None
    if entry.get("labels"):
        labels = _load_array(prepared_dir / entry["labels"])
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(images),):
            raise EAEError(
                f"{prepared_dir / entry['labels']}: {labels.dtype} {list(labels.shape)}, expected integers [{len(images)}]"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
            raise EAEError(
                f"{prepared_dir / entry['labels']}: labels range over {labels.min()}..{labels.max()}, "
                f"expected class indices 0..{MAX_CLASSES - 1}"
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
