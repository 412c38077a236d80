"""scikit-learn's bundled 8x8 digits (no files), upscaled to ``image_size``."""

from __future__ import annotations

import numpy as np

from eae.data.decode import resize, to_uint8
from eae.data.prepared import Split
from eae.data.sources.common import seeded_split


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
