"""The prepare step: dataset splits (``eae.data.sources``) -> the shards and manifest of ``eae.data.prepared``,
image files decoded shard by shard (in parallel with ``workers``), so a large dataset is never in memory whole."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from eae.data.decode import BAD_IMAGE_POLICIES, MAX_LOGGED_BAD, ImageFiles, close_zips, decoded_batches, die_with_parent
from eae.data.prepared import FORMAT, ShardWriter, Split, write_manifest
from eae.errors import EAEError

log = logging.getLogger(__name__)


def _check_shape(name: str, shape: tuple[int, ...], image_shape: list | None) -> list:
    if image_shape is not None and list(shape) != image_shape:
        raise EAEError(f"splits have different image shapes: split {name!r} has {list(shape)}, others {image_shape}")
    return list(shape)


def write_prepared(
    out_dir: str | Path,
    splits: dict[str, Split | ImageFiles],
    source: str,
    shard_size: int,
    *,
    workers: int = 0,
    on_bad_image: str = "skip",
) -> dict:
    """Write splits as uint8 .npy shards plus manifest.json into out_dir (which must exist).

    ImageFiles splits are decoded here: by ``workers`` processes (0 = in this process),
    in order, shard by shard. An unreadable image is skipped with a warning and listed
    under the manifest's ``bad_images`` (``on_bad_image="skip"``), or stops everything
    with an EAEError naming the file (``"fail"``). The manifest of array-only sources has
    no ``bad_images`` entry.
    """
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise EAEError(f"on_bad_image must be one of {BAD_IMAGE_POLICIES}, got {on_bad_image!r}")
    out_dir = Path(out_dir)
    shapes = set()
    for name, split in splits.items():
        if isinstance(split, Split):
            if split.images.dtype != np.uint8 or split.images.ndim != 4 or len(split.images) == 0:
                raise EAEError(
                    f"split {name!r}: expected non-empty uint8 [N, C, H, W], got "
                    f"{split.images.dtype} {split.images.shape}"
                )
            shapes.add(tuple(split.images.shape[1:]))
        elif not split.names:
            raise EAEError(f"split {name!r} has no image files")
        elif split.labels is not None and len(split.labels) != len(split.names):
            raise EAEError(f"split {name!r}: {len(split.names)} image files but {len(split.labels)} labels")
    if len(shapes) > 1:
        raise EAEError(f"splits have different image shapes: {sorted(shapes)}")
    digest = hashlib.sha256()
    entries: dict = {}
    image_shape: list | None = None
    bad: list[str] = []
    has_files = any(isinstance(s, ImageFiles) for s in splits.values())
    pool = None
    try:
        if has_files and workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: workers import only eae.data.decode (numpy, PIL); no fork of a process that may hold torch threads.
            pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        for name, split in splits.items():
            if isinstance(split, Split):
                image_shape = _check_shape(name, split.images.shape[1:], image_shape)
                writer = ShardWriter(out_dir, name, shard_size, digest, len(split.images))
                writer.add(split.images)
                labels = split.labels
            else:
                writer, labels = _write_files(
                    out_dir, name, split, shard_size, digest, pool, workers, on_bad_image, bad
                )
                if writer.count == 0:
                    raise EAEError(f"split {name!r}: none of its {len(split.names)} images could be read")
                image_shape = _check_shape(name, (3, split.decoder.size, split.decoder.size), image_shape)
            writer.flush()
            entry = {"count": writer.count, "shards": writer.shards, "labels": None}
            if labels is not None:
                labels = np.asarray(labels).astype(np.int64)
                entry["labels"] = f"{name}-labels.npy"
                np.save(out_dir / entry["labels"], labels)
                digest.update(labels.tobytes())
            entries[name] = entry
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        close_zips()
    if bad:
        more = f" ({len(bad) - MAX_LOGGED_BAD} not logged)" if len(bad) > MAX_LOGGED_BAD else ""
        log.warning("skipped %d unreadable image(s)%s; manifest.json lists them under bad_images", len(bad), more)
    manifest: dict = {"format": FORMAT, "source": source, "splits": entries, "image_shape": image_shape}
    if has_files:
        manifest["bad_images"] = {"count": len(bad), "files": bad}
    manifest["content_hash"] = "sha256:" + digest.hexdigest()
    write_manifest(out_dir, manifest)
    return manifest


def _write_files(
    out_dir: Path,
    name: str,
    split: ImageFiles,
    shard_size: int,
    digest,
    pool,
    workers: int,
    on_bad_image: str,
    bad: list[str],
) -> tuple[ShardWriter, np.ndarray | None]:
    from tqdm import tqdm

    writer = ShardWriter(out_dir, name, shard_size, digest, len(split.names))
    kept: list[np.ndarray] = []
    with tqdm(total=len(split.names), desc=f"prepare {name}", unit="img", mininterval=2) as bar:
        for offset, names, (images, failures) in decoded_batches(split, pool, workers):
            for i, reason in failures:
                if on_bad_image == "fail":
                    raise EAEError(
                        f"cannot read image {split.decoder.where(names[i])} ({reason}); "
                        f"set data.on_bad_image: skip to leave such files out"
                    )
                if len(bad) < MAX_LOGGED_BAD:
                    log.warning("skipping unreadable image %s (%s)", split.decoder.where(names[i]), reason)
                bad.append(names[i])
            writer.add(images)
            if split.labels is not None:
                failed = {i for i, _ in failures}
                kept.append(np.asarray([offset + i for i in range(len(names)) if i not in failed], dtype=np.int64))
            bar.update(len(names))
    labels = None
    if split.labels is not None:
        labels = np.asarray(split.labels)[np.concatenate(kept)] if kept else np.zeros(0, np.int64)
    return writer, labels
