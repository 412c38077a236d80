"""Bytes of raw dataset files with the real on-disk formats (CelebA JPEG, CIFAR-10 batch, MNIST idx)."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def jpeg_bytes(rng: np.random.Generator, size: tuple[int, int] = (178, 218)) -> bytes:
    """A smooth gradient with blocky noise, JPEG-encoded at CelebA's 178x218 by default."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1)
    noise = rng.integers(0, 40, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


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
