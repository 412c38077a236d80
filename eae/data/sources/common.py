"""What several sources share: the seeded train/test split and torchvision downloads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from eae.errors import EAEError

log = logging.getLogger(__name__)


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a reproducible random train/test split of n items."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n_test >= n:
        raise EAEError(f"test_fraction={test_fraction} leaves an empty split of {n} items")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def torchvision_download(source: str, root: Path, fetch: Callable[[], object], expected: str) -> None:
    """Run a torchvision downloader; any failure becomes one clear line."""
    log.info("downloading %s into %s (torchvision)", source, root)
    try:
        fetch()
    except Exception as exc:  # noqa: BLE001 - network, gdown, integrity: all end the same way
        reason = " ".join(str(exc).split())[:300] or "no details"
        raise EAEError(
            f"data.download: could not download {source} into {root} ({type(exc).__name__}: {reason}); "
            f"without network access put {expected} there by hand"
        ) from None
