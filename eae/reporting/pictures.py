"""The report's pictures: image grids of originals above reconstructions, straight lines between codes
decoded to images, and matplotlib figures embedded as PNG ``data:`` URIs (arrays in, pictures out)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import numpy as np

from eae.images import image_grid


def figure_data_uri(fig, dpi: int = 100) -> str:
    """A matplotlib figure as an embedded PNG (a pyplot figure is closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def grid_scale(image_width: int, ncol: int, target_px: int = 360, pad: int = 1) -> int:
    """Integer upscaling so a grid of ``ncol`` images is about ``target_px`` wide (at least 1)."""
    return max(1, round(target_px / (ncol * (image_width + pad) + pad)))


def to_float01(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]; float images are returned as float32 unchanged."""
    images = np.asarray(images)
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32, copy=False)


def interleave_rows(first: np.ndarray, second: np.ndarray, ncol: int) -> np.ndarray:
    """Float images ordered so that a grid of ``ncol`` columns shows a row of ``first``, then the
    row of ``second`` at the same positions, and so on (originals above their reconstructions).
    uint8 inputs are scaled to [0, 1]; a last incomplete row is dropped when there is a full one."""
    first, second = to_float01(first), to_float01(second)
    if first.shape != second.shape:
        raise ValueError(f"shapes differ: {first.shape} vs {second.shape}")
    ncol = max(1, min(ncol, len(first)))
    n = len(first) - len(first) % ncol
    rows = []
    for start in range(0, n, ncol):
        rows += [first[start : start + ncol], second[start : start + ncol]]
    return np.concatenate(rows) if rows else first[:0]


def paired_rows_picture(first: np.ndarray, second: np.ndarray, ncol: int, pad: int = 1, gap: int = 4) -> np.ndarray:
    """uint8 picture of ``interleave_rows``: each row of ``first`` directly above the matching row
    of ``second``, the pairs of rows separated by ``gap`` white pixels."""
    images = interleave_rows(first, second, ncol)
    ncol = max(1, min(ncol, len(first)))
    blocks = [image_grid(images[i : i + 2 * ncol], ncol, pad) for i in range(0, len(images), 2 * ncol)]
    if not blocks:
        raise ValueError("no images")
    space = np.full((gap, blocks[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([part for b in blocks for part in (b, space)][:-1], axis=0)


def interpolate_latents(z_start: np.ndarray, z_end: np.ndarray, steps: int = 10) -> np.ndarray:
    """Straight lines in code space: [P, d] endpoints -> [P, steps, d], t = 0, 1/(steps-1), ..., 1
    (the first and last steps are exactly ``z_start`` and ``z_end``)."""
    z_start, z_end = np.asarray(z_start), np.asarray(z_end)
    if z_start.shape != z_end.shape or z_start.ndim != 2:
        raise ValueError(f"endpoints must both be [P, d], got {z_start.shape} and {z_end.shape}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[None, :, None]
    path = (1.0 - t) * z_start[:, None, :] + t * z_end[:, None, :]
    path[:, 0], path[:, -1] = z_start, z_end
    return path.astype(z_start.dtype, copy=False)


def interpolation_images(
    decode: Callable[[np.ndarray], np.ndarray], z_start: np.ndarray, z_end: np.ndarray, steps: int = 10
) -> np.ndarray:
    """Decode the straight lines between code pairs: ``decode`` maps float32 codes [N, d] to images
    [N, C, H, W]; returns [P, steps, C, H, W] (first step = decode(z_start), last = decode(z_end))."""
    path = interpolate_latents(np.asarray(z_start, np.float32), np.asarray(z_end, np.float32), steps)
    p, s, d = path.shape
    images = np.asarray(decode(path.reshape(p * s, d)))
    return images.reshape(p, s, *images.shape[1:])


def interpolation_picture(
    start_images: np.ndarray, path_images: np.ndarray, end_images: np.ndarray, pad: int = 1, gap: int = 4
) -> np.ndarray:
    """One uint8 [H', W', 3] picture, a row per pair: the start image, a ``gap``-pixel white
    space, the S decoded steps [P, S, C, H, W], another gap, the end image."""
    path = to_float01(path_images)
    p, s = path.shape[:2]
    left = image_grid(to_float01(start_images), ncol=1, pad=pad)
    middle = image_grid(path.reshape(p * s, *path.shape[2:]), ncol=s, pad=pad)
    right = image_grid(to_float01(end_images), ncol=1, pad=pad)
    space = np.full((middle.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([left, space, middle, space, right], axis=1)
