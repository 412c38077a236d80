"""Fixtures of the flow tests: a non-Gaussian 2-D sample and flows whose layers are not the identity."""

from __future__ import annotations

import numpy as np
import torch

from eae.sampling.density import FlowDensity
from eae.sampling.flow import RealNVP


def banana(n: int, seed: int) -> np.ndarray:
    """A curved 2-D density no single Gaussian fits: x1 ~ N(0, 1), x2 = x1^2 / 2 + 0.3 N(0, 1)."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(n)
    return np.stack([x1, 0.5 * x1**2 + 0.3 * rng.standard_normal(n)], axis=1)


def randomised(flow: RealNVP, seed: int = 0) -> RealNVP:
    """The flow with every parameter and the standardisation drawn at random (its couplings no longer identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        flow.loc.copy_(torch.randn(flow.loc.shape, generator=g, dtype=flow.loc.dtype))
        flow.scale.copy_(torch.rand(flow.scale.shape, generator=g, dtype=flow.scale.dtype) + 0.5)
    return flow


def flow_density(flow: RealNVP) -> FlowDensity:
    """The flow as fit_density stores it."""
    return FlowDensity({"model": flow.config}, {k: v.detach().numpy() for k, v in flow.state_dict().items()})
