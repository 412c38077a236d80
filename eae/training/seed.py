"""The one seeding function of the project."""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int, deterministic: bool = True, compiled: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels.

    Same seed and same config give the same numbers on CPU. On CUDA, full
    determinism also needs ``CUBLAS_WORKSPACE_CONFIG``, which is set here.

    ``compiled``: the caller will ``torch.compile``. ``torch.use_deterministic_algorithms`` sets the
    flag of eager kernels and, for compiled code, ``torch._inductor.config.deterministic``; importing
    that config pulls in dynamo and inductor (seconds of every stage's start on a CPU). Without
    ``compiled`` (and with inductor not yet imported) only the eager flag is set, through the call
    that ``use_deterministic_algorithms`` itself makes (``tests/eae/test_seed.py`` checks that both
    paths leave torch in the same mode).
    """
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if compiled or "torch._inductor.config" in sys.modules:
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch._C._set_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
