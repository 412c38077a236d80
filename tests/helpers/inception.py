"""Random-weight FID Inception: pytorch-fid's architecture with seeded weights, saved where torch hub
caches the real ones (there is no network here; the numbers, not the FIDs, are what tests check)."""

from __future__ import annotations

import torch
from pytorch_fid import inception as pf_inception

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def random_fid_inception_state(seed: int = 0) -> dict:
    """State dict of pytorch-fid's FID Inception architecture with seeded random weights
    (``fid_inception_v3`` without its download)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = pf_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = pf_inception.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pf_inception.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pf_inception.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pf_inception.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pf_inception.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pf_inception.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pf_inception.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pf_inception.FIDInceptionE_1(1280)
        net.Mixed_7c = pf_inception.FIDInceptionE_2(2048)
    return net.state_dict()
