"""Features of image batches for the Fréchet distance (generated, reconstructed and real images alike).

A *feature extractor* is any callable mapping float images [N, C, H, W] in [0, 1]
on some device to features [N, D]; the classifier's ``features`` is one, and
Inception plugs in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def features_of(extract: FeatureExtractor, image_batches: Iterable[torch.Tensor], progress=None) -> np.ndarray:
    """Concatenate extractor features over float image batches, as float64 numpy."""
    out = []
    for x in image_batches:
        out.append(extract(x).double().cpu().numpy())
        if progress is not None:
            progress.update(len(x))
    return np.concatenate(out)
