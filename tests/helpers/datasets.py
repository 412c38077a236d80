"""Bytes of raw dataset files with the real on-disk formats (CelebA JPEG, CIFAR-10 batch, MNIST idx)."""

from __future__ import annotations

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
