"""Feature statistics of generated, reconstructed and real images (for the Fréchet distance).

A *feature extractor* is any callable mapping float images [N, C, H, W] in [0, 1]
on some device to features [N, D]; the classifier's ``features`` is one, and
Inception plugs in the same way.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from eae.generator import Generator
from eae.runtime import draw_inputs

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


def generated_batches(generator: Generator, n: int, batch_size: int, seed: int) -> Iterable[torch.Tensor]:
    """n images from the generator in batches, with the same inputs the ONNX generator would get
    from ``draw_inputs(n, d, seed)``; runs on the generator's device."""
    device = generator.sampler.means.device
    noise, u = draw_inputs(n, generator.sampler.means.shape[1], seed)
    generator.eval()
    for start in range(0, n, batch_size):
        stop = start + batch_size
        with torch.no_grad():
            yield generator(torch.from_numpy(noise[start:stop]).to(device), torch.from_numpy(u[start:stop]).to(device))
