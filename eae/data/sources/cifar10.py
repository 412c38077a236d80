"""CIFAR-10 (torchvision's python batches): read without unpickling arbitrary objects."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from eae.data.prepared import Split
from eae.data.sources.common import torchvision_download
from eae.errors import EAEError

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 1.26
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the official CIFAR batch files (a dict of a uint8 array and lists) and
    refuses every other global, so a tampered file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}:
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # bytes as written by pickle protocol 2
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _parse_cifar_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _CifarUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise EAEError(f"{where}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise EAEError(f"{where}: not a CIFAR-10 python batch (a {type(batch).__name__})")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels is None
        or len(labels) != len(data)
    ):
        raise EAEError(f"{where}: expected 'data' uint8 [n, 3072] and n 'labels'")
    # Rows are 1024 red, 1024 green, 1024 blue values, each 32x32 row-major: already C, H, W.
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _read_cifar_files(root: Path) -> tuple[dict[str, bytes], str]:
    wanted = [f for files in CIFAR_BATCHES.values() for f in files]
    folder, archive = root / CIFAR_DIR, root / CIFAR_ARCHIVE
    if folder.is_dir():
        blobs = {}
        for f in wanted:
            try:
                blobs[f] = (folder / f).read_bytes()
            except FileNotFoundError:
                raise EAEError(f"missing {folder / f} (CIFAR-10 python batches)") from None
        return blobs, str(folder)
    blobs = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and member.name.startswith(CIFAR_DIR + "/"):
                    blobs[base] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise EAEError(f"cannot read {archive}: {exc}") from None
    missing = [f for f in wanted if f not in blobs]
    if missing:
        raise EAEError(f"{archive} lacks {CIFAR_DIR}/{missing[0]}")
    return blobs, str(archive)


def load_cifar10_source(
    *, root: str | Path, image_size: int = 32, download: bool = False, **_: object
) -> dict[str, Split]:
    """CIFAR-10 as torchvision stores it: 50,000 train and 10,000 test 32x32 RGB images with
    labels, used as they are (no preprocessing)."""
    if image_size != 32:
        raise EAEError(f"cifar10 images are 32x32 and are not resized: set data.image_size: 32 (got {image_size})")
    root = Path(root)
    expected = f"{CIFAR_DIR}/ or {CIFAR_ARCHIVE}"
    if not ((root / CIFAR_DIR).is_dir() or (root / CIFAR_ARCHIVE).is_file()):
        if download:

            def fetch() -> None:
                from torchvision.datasets import CIFAR10

                CIFAR10(str(root), train=True, download=True)

            torchvision_download("cifar10", root, fetch, expected)
        else:
            what = "does not exist" if not root.is_dir() else f"has no {expected}"
            raise EAEError(f"data.root {root} {what} (torchvision's CIFAR-10 files; or set data.download: true)")
    blobs, where = _read_cifar_files(root)
    splits = {}
    for name, files in CIFAR_BATCHES.items():
        parts = [
            _parse_cifar_batch(blobs.pop(f), f"{where}/{f}" if not where.endswith(".gz") else f"{where}:{f}")
            for f in files
        ]
        splits[name] = Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return splits
