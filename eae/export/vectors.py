"""Test vectors for ports of the generator to other runtimes (onnxruntime-node, onnxruntime-web, ...).

numpy's PCG64 noise stream cannot be reproduced in JavaScript, so a port checks itself on fixed inputs
instead: ``models/test_vectors.json`` holds ``n`` rows of ``noise`` and ``u`` (drawn by ``draw_inputs`` with
``seed``) and the uint8 images this runtime makes from them. A port feeds the same inputs and must match the
images within ``tolerance`` levels per pixel (float rounding differs between execution providers).

    {"format": "eae-test-vectors/1", "generator_sha256", "n", "seed", "noise_dim", "image_shape": [C, H, W],
     "noise": [[float32 as JSON numbers] x n], "u": [...],
     "images": {"dtype": "uint8", "layout": "NHWC", "shape": [n, H, W, C], "base64": ...},
     "tolerance": 1, "pixels": "round(255 * images) clipped to [0, 255], channels last"}

A float32 printed by Python's ``float`` (shortest repr of the double it widens to) reads back as the same
float32 in any language (``Float32Array.from`` in JS). No torch here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from eae.errors import EAEError
from eae.export.card import sha256_file
from eae.export.runtime import Generator, draw_inputs, to_uint8_nhwc

FORMAT = "eae-test-vectors/1"
TOLERANCE = 1  # levels of 255 per pixel


def make_test_vectors(generator_path: str | Path, n: int, seed: int) -> dict:
    """Inputs and expected uint8 images of ``n`` draws from ``seed`` for the generator at ``generator_path``
    (one single-threaded onnxruntime run on CPU; the card is not read, so it works on a staged export)."""
    if n < 1:
        raise EAEError(f"number of test vectors must be at least 1, got {n}")
    gen = Generator(generator_path, verify=False, threads=1)
    noise, u = draw_inputs(n, gen.noise_dim, seed)
    images = to_uint8_nhwc(gen.generate(noise, u))
    return {
        "format": FORMAT,
        "generator_sha256": sha256_file(generator_path),
        "n": n,
        "seed": seed,
        "noise_dim": gen.noise_dim,
        "image_shape": list(gen.image_shape),
        "noise": [[float(v) for v in row] for row in noise],
        "u": [float(v) for v in u],
        "images": {
            "dtype": "uint8",
            "layout": "NHWC",
            "shape": list(images.shape),
            "base64": base64.b64encode(np.ascontiguousarray(images).tobytes()).decode("ascii"),
        },
        "tolerance": TOLERANCE,
        "pixels": "round(255 * images) clipped to [0, 255], channels last",
    }


def read_test_vectors(path: str | Path) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """(record, noise float32 [n, d], u float32 [n], images uint8 [n, H, W, C]) of a test-vector file."""
    try:
        record = json.loads(Path(path).read_text())
        if record.get("format") != FORMAT:
            raise EAEError(f"{path} is not an EAE test-vector file (expected format {FORMAT!r})")
        images = np.frombuffer(base64.b64decode(record["images"]["base64"]), np.uint8)
        images = images.reshape(record["images"]["shape"])
        noise = np.asarray(record["noise"], np.float32).reshape(record["n"], record["noise_dim"])
        u = np.asarray(record["u"], np.float32).reshape(record["n"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EAEError(f"cannot read test vectors {path}: {type(exc).__name__}: {exc}") from None
    return record, noise, u, images


def max_level_difference(images: np.ndarray, expected: np.ndarray) -> int:
    """The largest |difference| in levels between two uint8 image arrays of one shape."""
    images, expected = np.asarray(images), np.asarray(expected)
    if images.shape != expected.shape:
        raise EAEError(f"images have shape {list(images.shape)}, the test vectors {list(expected.shape)}")
    return int(np.abs(images.astype(np.int16) - expected.astype(np.int16)).max(initial=0))
