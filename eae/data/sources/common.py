"""What several sources share: the seeded train/test split (``eae.data.prepared.seeded_split``, re-exported
here) and torchvision downloads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from eae.data.prepared import seeded_split  # noqa: F401  (the sources' split)
from eae.errors import EAEError

log = logging.getLogger(__name__)


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
