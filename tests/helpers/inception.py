"""Random-weight FID Inception: pytorch-fid's architecture with seeded weights, saved where torch hub
caches the real ones (there is no network here; the numbers, not the FIDs, are what tests check).
Defined in benchmarks/synthetic.py, which the benchmarks and scripts/device_check.sh use too."""

from __future__ import annotations

from benchmarks.synthetic import FID_WEIGHTS_NAME as WEIGHTS_NAME
from benchmarks.synthetic import random_fid_inception_state

__all__ = ["WEIGHTS_NAME", "random_fid_inception_state"]
