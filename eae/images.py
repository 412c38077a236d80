"""Image tiling and PNG encoding (numpy + Pillow)."""

from __future__ import annotations

import base64
import io

import numpy as np


def image_grid(images: np.ndarray, ncol: int = 8, pad: int = 1) -> np.ndarray:
    """Tile [N, C, H, W] images (float in [0, 1] or uint8) into one uint8 [H', W', 3] picture."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    n, c, h, w = images.shape
    if c == 1:
        images = np.repeat(images, 3, axis=1)
    ncol = max(1, min(ncol, n))
    nrow = -(-n // ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = (
            img.transpose(1, 2, 0)
        )
    return grid


def png_data_uri(picture: np.ndarray, scale: int = 1) -> str:
    """uint8 [H, W, 3] -> 'data:image/png;base64,...' (nearest-neighbour upscaled by ``scale``)."""
    from PIL import Image

    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
