"""Dataset sources and their preprocessing: raw files -> the prepared shard format of
``eae.prepared`` (used by the prepare stage only).

A *source* is a function returning ``{split_name: Split | ImageFiles}``; register
new ones in ``SOURCES``. ``Split`` holds decoded arrays; ``ImageFiles`` is a list
of image files that ``write_prepared`` decodes (in parallel, ``workers``) and
writes shard by shard, so a large dataset (CelebA: 202,599 x 3x64x64 = 2.5 GB) is
never held in memory as a whole.

Sources (``data.source``) and the raw layouts they read under ``data.root``:

- ``digits``: scikit-learn's bundled 8x8 digits (no files).
- ``celeba``: ``img_align_celeba/`` (or ``img_align_celeba.zip``) and
  ``list_eval_partition.txt``, directly in root or in ``root/celeba/`` (where
  torchvision's downloader puts them); official partition -> train/valid/test;
  centre crop 140x140, resize to image_size (see ``ImageDecoder``).
- ``cifar10``: torchvision's ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``;
  32x32, no preprocessing; train/test with labels.
- ``mnist``: torchvision's ``MNIST/raw/*-idx?-ubyte[.gz]`` (or the idx files in root);
  28x28 zero-padded to image_size (32); train/test with labels.
- ``folder``: any folder of images (recursive), split by ``split_file`` or by a
  seeded random split with test_fraction; RGB, cropped (``crop``) and resized.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import io
import itertools
import logging
import math
import os
import pickle
import re
import signal
import struct
import sys
import tarfile
import threading
import time
import warnings
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from eae.errors import EAEError
from eae.prepared import FORMAT, ShardWriter, Split, write_manifest

log = logging.getLogger("eae.sources")


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Map floats in [0, 1] to uint8 with rounding (values outside are clipped)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize float [N, C, H, W] images in [0, 1] to size x size (bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    if images.shape[-2:] == (size, size):
        return images
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    out = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).numpy()


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a reproducible random train/test split of n items."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n_test >= n:
        raise EAEError(f"test_fraction={test_fraction} leaves an empty split of {n} items")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


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


# --------------------------------------------------------------------------- image files

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"})
CELEBA_CROP = 140
BAD_IMAGE_POLICIES = ("skip", "fail")
_MAX_LOGGED_BAD = 20  # warnings logged one by one; the manifest lists all of them
# Larger images are unreadable (skipped or failed by data.on_bad_image) before they are decoded:
# Pillow's own decompression-bomb threshold (89.5 million pixels, 256 MiB as RGB), which Pillow
# only warns about up to twice that; a 13000x13000 file would otherwise take 0.5-1.4 GB per
# decoding worker. Photos from 50-megapixel cameras still pass.
MAX_IMAGE_PIXELS = 89_478_485

# What a broken file raises while it is opened and decoded (PIL, zip, file system).
_UNREADABLE: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, EOFError, KeyError,
                                                 zipfile.BadZipFile)

_ZIPS: dict[str, zipfile.ZipFile] = {}  # per process: archives stay open while a split is decoded


def _zip(path: str) -> zipfile.ZipFile:
    archive = _ZIPS.get(path)
    if archive is None:
        archive = _ZIPS[path] = zipfile.ZipFile(path)
    return archive


def _close_zips() -> None:
    while _ZIPS:
        _ZIPS.popitem()[1].close()


@dataclass(frozen=True)
class ImageDecoder:
    """How one image file becomes uint8 [3, size, size] RGB (picklable: runs in worker processes).

    base: the folder of the files, or a .zip archive when ``zip_prefix`` is not None
        (then a file ``name`` is the member ``zip_prefix + name``).
    crop: ``"fixed"`` = centre crop_size x crop_size (CelebA: 140, an image smaller than
        that is unreadable), ``"center"`` = centre square of the shorter side, ``"none"`` =
        no crop (the aspect ratio is not kept). Centre offsets are floor((W - c) / 2),
        floor((H - c) / 2): for CelebA's 178x218 images the crop box is (19, 39, 159, 179).

    Resizing uses PIL's LANCZOS filter on the uint8 RGB image. PIL widens the filter's
    support by the scale factor, so this is an antialiased downscale, and LANCZOS is the
    filter old Pillow called ``ANTIALIAS``: the WAE code (Tolstikhin et al. 2018), origin
    of the "centre crop 140, resize 64" CelebA protocol that the RAE and EAE comparisons
    use, does exactly ``im.crop(box140).resize((64, 64), PIL.Image.ANTIALIAS)``. Doing it
    in PIL also keeps torch out of the worker processes and gives the same bytes whatever
    the worker count. (torchvision's tensor resize with antialias=True only offers
    bilinear/bicubic, which approximate PIL's filters of those names, not LANCZOS.)

    An image of more than ``max_pixels`` pixels (its header says so) is unreadable without being
    decoded (see ``MAX_IMAGE_PIXELS``).
    """

    base: str
    size: int
    crop: str = "center"
    crop_size: int = 0
    zip_prefix: str | None = None
    max_pixels: int = MAX_IMAGE_PIXELS

    def where(self, name: str) -> str:
        if self.zip_prefix is None:
            return str(Path(self.base) / name)
        return f"{self.base}:{self.zip_prefix}{name}"

    def __call__(self, name: str) -> np.ndarray:
        from PIL import Image

        if self.zip_prefix is None:
            source: object = Path(self.base) / name
        else:
            source = io.BytesIO(_zip(self.base).read(self.zip_prefix + name))
        with warnings.catch_warnings():
            # Pillow warns about (and above twice the limit refuses) possible decompression bombs; the
            # size check below turns every image over the limit into one bad-image reason instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as im:  # reads the header only
                w, h = im.size
                if w * h > self.max_pixels:
                    raise ValueError(f"{w}x{h} = {w * h:,} pixels exceeds the limit of {self.max_pixels:,} "
                                     "pixels (not decoded)")
                im = im.convert("RGB")  # decodes the whole file: truncated data raises here
        w, h = im.size
        if self.crop == "fixed":
            if w < self.crop_size or h < self.crop_size:
                raise ValueError(f"{w}x{h} is smaller than the {self.crop_size}x{self.crop_size} centre crop")
            c = self.crop_size
        elif self.crop == "center":
            c = min(w, h)
        elif self.crop == "none":
            c = 0
        else:
            raise EAEError(f"unknown crop {self.crop!r}; use none or center")
        if c:
            left, top = (w - c) // 2, (h - c) // 2
            im = im.crop((left, top, left + c, top + c))
        if im.size != (self.size, self.size):
            im = im.resize((self.size, self.size), Image.Resampling.LANCZOS)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


@dataclass
class ImageFiles:
    """A split given as image files: ``write_prepared`` decodes them while it writes."""

    names: list[str]
    decoder: ImageDecoder
    labels: np.ndarray | None = None  # int64 [len(names)]


def _decode_batch(decoder: ImageDecoder, names: list[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode names; returns the readable images (in order) and (index, reason) of the others."""
    from PIL import Image

    unreadable = _UNREADABLE + (Image.DecompressionBombError,)
    out = np.empty((len(names), 3, decoder.size, decoder.size), dtype=np.uint8)
    ok, bad = 0, []
    for i, name in enumerate(names):
        try:
            out[ok] = decoder(name)
            ok += 1
        except unreadable as exc:
            bad.append((i, f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
    return out[:ok], bad


def die_with_parent(parent: int) -> None:
    """Pool initializer: the worker ends when process ``parent`` does, even when that one is
    killed with SIGKILL (nothing of it runs then), so no decoding worker is left orphaned. Linux:
    prctl(PR_SET_PDEATHSIG, SIGKILL); elsewhere a daemon thread polls the parent's pid."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before the request took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _decoded_batches(split: ImageFiles, pool, workers: int) -> Iterator[tuple[int, list[str], tuple]]:
    """(offset, names, _decode_batch result) for consecutive batches, in order; with a pool
    at most 2 * workers batches are in flight, so memory stays bounded."""
    n = len(split.names)
    size = max(1, min(128, math.ceil(n / (4 * max(workers, 1)))))
    batches = ((i, split.names[i:i + size]) for i in range(0, n, size))
    if pool is None:
        for offset, names in batches:
            yield offset, names, _decode_batch(split.decoder, names)
        return
    ahead = deque((offset, names, pool.submit(_decode_batch, split.decoder, names))
                  for offset, names in itertools.islice(batches, 2 * workers))
    while ahead:
        offset, names, future = ahead.popleft()
        nxt = next(batches, None)
        if nxt is not None:
            ahead.append((nxt[0], nxt[1], pool.submit(_decode_batch, split.decoder, nxt[1])))
        yield offset, names, future.result()


# --------------------------------------------------------------------------- downloads

def _download(source: str, root: Path, fetch: Callable[[], object], expected: str) -> None:
    """Run a torchvision downloader; any failure becomes one clear line."""
    log.info("downloading %s into %s (torchvision)", source, root)
    try:
        fetch()
    except Exception as exc:  # noqa: BLE001 - network, gdown, integrity: all end the same way
        reason = " ".join(str(exc).split())[:300] or "no details"
        raise EAEError(f"data.download: could not download {source} into {root} ({type(exc).__name__}: {reason}); "
                       f"without network access put {expected} there by hand") from None


# --------------------------------------------------------------------------- celeba

CELEBA_PARTITIONS = {"0": "train", "1": "valid", "2": "test"}
_CELEBA_EXPECTED = "img_align_celeba/ (or img_align_celeba.zip) and list_eval_partition.txt"


def _celeba_dir(root: Path) -> Path:
    for d in (root, root / "celeba"):
        if any((d / f).exists() for f in ("img_align_celeba", "img_align_celeba.zip", "list_eval_partition.txt")):
            return d
    return root


def _read_celeba_partition(path: Path) -> dict[str, list[str]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise EAEError(f"missing {path}: CelebA's official partition file is needed "
                       f"(lines '000001.jpg 0'; 0 train, 1 valid, 2 test)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EAEError(f"cannot read {path}: {exc}") from None
    splits: dict[str, list[str]] = {name: [] for name in CELEBA_PARTITIONS.values()}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in CELEBA_PARTITIONS:
            raise EAEError(f"{path}:{number}: expected '<file>.jpg <0|1|2>', got {line.strip()!r}")
        splits[CELEBA_PARTITIONS[fields[1]]].append(fields[0])
    if not any(splits.values()):
        raise EAEError(f"{path} lists no images")
    return {name: files for name, files in splits.items() if files}


def load_celeba_source(*, root: str | Path, image_size: int, download: bool = False,
                       **_: object) -> dict[str, ImageFiles]:
    """CelebA (aligned, 178x218 JPEGs) with its official train/valid/test partition:
    centre crop 140x140, LANCZOS resize to image_size (see ImageDecoder), RGB."""
    root = Path(root)
    d = _celeba_dir(root)
    images, archive = d / "img_align_celeba", d / "img_align_celeba.zip"
    have_images = images.is_dir() or archive.is_file()
    if download and not (have_images and (d / "list_eval_partition.txt").is_file()):
        def fetch() -> None:
            from torchvision.datasets import CelebA

            CelebA(str(root), split="all", target_type=[], download=True)

        _download("celeba", root, fetch, _CELEBA_EXPECTED)
        d = _celeba_dir(root)
        images, archive = d / "img_align_celeba", d / "img_align_celeba.zip"
        have_images = images.is_dir() or archive.is_file()
    if not root.is_dir():
        raise EAEError(f"data.root {root} does not exist: it should hold CelebA's {_CELEBA_EXPECTED} "
                       f"(or set data.download: true)")
    if not have_images:
        raise EAEError(f"no CelebA images under {d}: expected {images}/ or {archive}")
    partition = _read_celeba_partition(d / "list_eval_partition.txt")
    if images.is_dir():
        decoder = ImageDecoder(str(images), image_size, crop="fixed", crop_size=CELEBA_CROP)
    else:
        try:
            members = _zip(str(archive)).namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise EAEError(f"cannot open {archive}: {exc}") from None
        finally:
            _close_zips()
        prefix = "img_align_celeba/" if any(m.startswith("img_align_celeba/") for m in members) else ""
        decoder = ImageDecoder(str(archive), image_size, crop="fixed", crop_size=CELEBA_CROP, zip_prefix=prefix)
    return {name: ImageFiles(files, decoder) for name, files in partition.items()}


# --------------------------------------------------------------------------- cifar10

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
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
            or labels is None or len(labels) != len(data):
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


def load_cifar10_source(*, root: str | Path, image_size: int = 32, download: bool = False,
                        **_: object) -> dict[str, Split]:
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

            _download("cifar10", root, fetch, expected)
        else:
            what = "does not exist" if not root.is_dir() else f"has no {expected}"
            raise EAEError(f"data.root {root} {what} (torchvision's CIFAR-10 files; or set data.download: true)")
    blobs, where = _read_cifar_files(root)
    splits = {}
    for name, files in CIFAR_BATCHES.items():
        parts = [_parse_cifar_batch(blobs.pop(f), f"{where}/{f}" if not where.endswith(".gz") else f"{where}:{f}")
                 for f in files]
        splits[name] = Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return splits


# --------------------------------------------------------------------------- mnist

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find_mnist_file(root: Path, name: str) -> Path | None:
    for d in (root / "MNIST" / "raw", root):
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes (MNIST's format; gzipped when the name ends in .gz)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise EAEError(f"cannot read {path}: {exc}") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise EAEError(f"{path}: not an idx file of unsigned bytes with {ndim} dimension(s)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != math.prod(dims):
        raise EAEError(f"{path}: header says {dims} = {math.prod(dims)} values, the file holds {data.size}")
    return data.reshape(dims)


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad uint8 [N, H, W] to [N, 1, size, size], the image in the centre
    (an odd margin puts the extra row/column at the bottom/right)."""
    n, h, w = images.shape
    if h > size or w > size:
        raise EAEError(f"cannot pad {h}x{w} images to {size}x{size}: data.image_size must be >= {max(h, w)}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((n, 1, size, size), dtype=np.uint8)
    out[:, 0, top:top + h, left:left + w] = images
    return out


def load_mnist_source(*, root: str | Path, image_size: int = 32, download: bool = False,
                      **_: object) -> dict[str, Split]:
    """MNIST from torchvision's raw idx files: 60,000 train and 10,000 test digits with
    labels, 28x28 zero-padded to image_size (32, as in the paper; no resizing)."""
    root = Path(root)
    names = [f for pair in MNIST_FILES.values() for f in pair]
    if download and any(_find_mnist_file(root, f) is None for f in names):
        def fetch() -> None:
            from torchvision.datasets import MNIST

            MNIST(str(root), train=True, download=True)

        _download("mnist", root, fetch, "MNIST/raw/*-ubyte[.gz]")
    if not root.is_dir():
        raise EAEError(f"data.root {root} does not exist (torchvision's MNIST/raw/ idx files; "
                       f"or set data.download: true)")
    splits = {}
    for split, (image_file, label_file) in MNIST_FILES.items():
        paths = [_find_mnist_file(root, f) for f in (image_file, label_file)]
        for f, path in zip((image_file, label_file), paths):
            if path is None:
                raise EAEError(f"missing {root / 'MNIST' / 'raw' / f}[.gz] (torchvision's MNIST layout)")
        images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
        if len(images) != len(labels):
            raise EAEError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
        splits[split] = Split(pad_to(images, image_size), labels.astype(np.int64))
    return splits


# --------------------------------------------------------------------------- folder

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _scan_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under root (recursive, hidden entries skipped), sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        found += [(rel / f).as_posix() for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def _read_split_file(path: Path) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {}
    seen: set[str] = set()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EAEError(f"cannot read data.split_file {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(None, 1)
        if len(fields) != 2 or not _SPLIT_NAME.match(fields[1]):
            raise EAEError(f"{path}:{number}: expected '<relative/path> <split>', got {line!r}")
        name = fields[0].removeprefix("./")
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise EAEError(f"{path}:{number}: {name} is outside data.root (split files list paths relative to it, "
                           "without '..')")
        if name in seen:
            raise EAEError(f"{path}:{number}: {name} is listed twice")
        seen.add(name)
        splits.setdefault(fields[1], []).append(name)
    for needed in ("train", "test"):
        if needed not in splits:
            raise EAEError(f"{path} has no '{needed}' entries (splits found: {sorted(splits) or 'none'})")
    return {k: splits[k] for k in sorted(splits, key=lambda s: (s != "train", s == "test", s))}


def _resolve_split_file(split_file: str, root: Path) -> Path:
    path = Path(split_file)
    for candidate in (path, root / path) if not path.is_absolute() else (path,):
        if candidate.is_file():
            return candidate
    raise EAEError(f"data.split_file {split_file} not found (looked in the working directory and in {root})")


def load_folder_source(*, root: str | Path, image_size: int, test_fraction: float = 0.2, seed: int = 0,
                       crop: str = "center", split_file: str | None = None, download: bool = False,
                       **_: object) -> dict[str, ImageFiles]:
    """Every image under root (recursive), RGB, cropped (crop: center | none) and resized to
    image_size with LANCZOS (see ImageDecoder). Splits: split_file lines '<relative/path> <split>'
    (it must name train and test; unlisted images are left out), else a seeded train/test split."""
    if download:
        raise EAEError("data.download is not available for source 'folder'")
    if crop not in ("none", "center"):
        raise EAEError(f"unknown data.crop {crop!r}; use none or center")
    root = Path(root)
    if not root.is_dir():
        raise EAEError(f"data.root {root} is not a folder")
    names = _scan_images(root)
    if not names:
        raise EAEError(f"no images under {root} (extensions: {' '.join(sorted(IMAGE_EXTENSIONS))})")
    decoder = ImageDecoder(str(root), image_size, crop=crop)
    if split_file:
        listed = _read_split_file(_resolve_split_file(split_file, root))
        left_out = len(set(names) - {n for files in listed.values() for n in files})
        if left_out:
            log.info("%d images under %s are not in %s and are left out", left_out, root, split_file)
        return {split: ImageFiles(files, decoder) for split, files in listed.items()}
    train, test = seeded_split(len(names), test_fraction, seed)
    return {"train": ImageFiles([names[i] for i in train], decoder),
            "test": ImageFiles([names[i] for i in test], decoder)}


SOURCES: dict[str, Callable[..., dict[str, Split | ImageFiles]]] = {
    "digits": load_digits_source,
    "celeba": load_celeba_source,
    "cifar10": load_cifar10_source,
    "mnist": load_mnist_source,
    "folder": load_folder_source,
}


def load_source(name: str, **kwargs: object) -> dict[str, Split | ImageFiles]:
    if name not in SOURCES:
        raise EAEError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name](**kwargs)


# --------------------------------------------------------------------------- writing

def _check_shape(name: str, shape: tuple[int, ...], image_shape: list | None) -> list:
    if image_shape is not None and list(shape) != image_shape:
        raise EAEError(f"splits have different image shapes: split {name!r} has {list(shape)}, "
                       f"others {image_shape}")
    return list(shape)


def write_prepared(out_dir: str | Path, splits: dict[str, Split | ImageFiles], source: str, shard_size: int,
                   *, workers: int = 0, on_bad_image: str = "skip") -> dict:
    """Write splits as uint8 .npy shards plus manifest.json into out_dir (which must exist).

    ImageFiles splits are decoded here: by ``workers`` processes (0 = in this process),
    in order, shard by shard. An unreadable image is skipped with a warning and listed
    under the manifest's ``bad_images`` (``on_bad_image="skip"``), or stops everything
    with an EAEError naming the file (``"fail"``). The manifest of array-only sources has
    no ``bad_images`` entry.
    """
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise EAEError(f"on_bad_image must be one of {BAD_IMAGE_POLICIES}, got {on_bad_image!r}")
    out_dir = Path(out_dir)
    shapes = set()
    for name, split in splits.items():
        if isinstance(split, Split):
            if split.images.dtype != np.uint8 or split.images.ndim != 4 or len(split.images) == 0:
                raise EAEError(f"split {name!r}: expected non-empty uint8 [N, C, H, W], got "
                               f"{split.images.dtype} {split.images.shape}")
            shapes.add(tuple(split.images.shape[1:]))
        elif not split.names:
            raise EAEError(f"split {name!r} has no image files")
        elif split.labels is not None and len(split.labels) != len(split.names):
            raise EAEError(f"split {name!r}: {len(split.names)} image files but {len(split.labels)} labels")
    if len(shapes) > 1:
        raise EAEError(f"splits have different image shapes: {sorted(shapes)}")
    digest = hashlib.sha256()
    entries: dict = {}
    image_shape: list | None = None
    bad: list[str] = []
    has_files = any(isinstance(s, ImageFiles) for s in splits.values())
    pool = None
    try:
        if has_files and workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: workers import only eae.sources (numpy, PIL); no fork of a process that may hold torch threads.
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=die_with_parent, initargs=(os.getpid(),))
        for name, split in splits.items():
            if isinstance(split, Split):
                image_shape = _check_shape(name, split.images.shape[1:], image_shape)
                writer = ShardWriter(out_dir, name, shard_size, digest, len(split.images))
                writer.add(split.images)
                labels = split.labels
            else:
                writer, labels = _write_files(out_dir, name, split, shard_size, digest, pool, workers,
                                              on_bad_image, bad)
                if writer.count == 0:
                    raise EAEError(f"split {name!r}: none of its {len(split.names)} images could be read")
                image_shape = _check_shape(name, (3, split.decoder.size, split.decoder.size), image_shape)
            writer.flush()
            entry = {"count": writer.count, "shards": writer.shards, "labels": None}
            if labels is not None:
                labels = np.asarray(labels).astype(np.int64)
                entry["labels"] = f"{name}-labels.npy"
                np.save(out_dir / entry["labels"], labels)
                digest.update(labels.tobytes())
            entries[name] = entry
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _close_zips()
    if bad:
        more = f" ({len(bad) - _MAX_LOGGED_BAD} not logged)" if len(bad) > _MAX_LOGGED_BAD else ""
        log.warning("skipped %d unreadable image(s)%s; manifest.json lists them under bad_images", len(bad), more)
    manifest: dict = {"format": FORMAT, "source": source, "splits": entries, "image_shape": image_shape}
    if has_files:
        manifest["bad_images"] = {"count": len(bad), "files": bad}
    manifest["content_hash"] = "sha256:" + digest.hexdigest()
    write_manifest(out_dir, manifest)
    return manifest


def _write_files(out_dir: Path, name: str, split: ImageFiles, shard_size: int, digest, pool, workers: int,
                 on_bad_image: str, bad: list[str]) -> tuple[ShardWriter, np.ndarray | None]:
    from tqdm import tqdm

    writer = ShardWriter(out_dir, name, shard_size, digest, len(split.names))
    kept: list[np.ndarray] = []
    with tqdm(total=len(split.names), desc=f"prepare {name}", unit="img", mininterval=2) as bar:
        for offset, names, (images, failures) in _decoded_batches(split, pool, workers):
            for i, reason in failures:
                if on_bad_image == "fail":
                    raise EAEError(f"cannot read image {split.decoder.where(names[i])} ({reason}); "
                                   f"set data.on_bad_image: skip to leave such files out")
                if len(bad) < _MAX_LOGGED_BAD:
                    log.warning("skipping unreadable image %s (%s)", split.decoder.where(names[i]), reason)
                bad.append(names[i])
            writer.add(images)
            if split.labels is not None:
                failed = {i for i, _ in failures}
                kept.append(np.asarray([offset + i for i in range(len(names)) if i not in failed], dtype=np.int64))
            bar.update(len(names))
    labels = None
    if split.labels is not None:
        labels = np.asarray(split.labels)[np.concatenate(kept)] if kept else np.zeros(0, np.int64)
    return writer, labels
