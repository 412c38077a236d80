"""Image decoding for the file-based sources: one image file -> uint8 [C, H, W] (crop, resize, RGB),
unreadable files reported, and the process pool that decodes a split in parallel, in order."""

from __future__ import annotations

import ctypes
import io
import itertools
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError

log = logging.getLogger(__name__)


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


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"})
CELEBA_CROP = 140
BAD_IMAGE_POLICIES = ("skip", "fail")
MAX_LOGGED_BAD = 20  # warnings logged one by one; the manifest lists all of them
# Larger images are unreadable (skipped or failed by data.on_bad_image) before they are decoded:
# Pillow's own decompression-bomb threshold (89.5 million pixels, 256 MiB as RGB), which Pillow
# only warns about up to twice that; a 13000x13000 file would otherwise take gigabytes per
# decoding worker. Photos from 50-megapixel cameras still pass.
MAX_IMAGE_PIXELS = 89_478_485

# What a broken file raises while it is opened and decoded (PIL, zip, file system).
_UNREADABLE: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    KeyError,
    zipfile.BadZipFile,
)

#: Transparent pixels are composited over this colour (white: how a transparent image shows on a page);
#: dropping the alpha channel, Pillow's convert("RGB"), shows whatever colour the invisible pixels hold.
ALPHA_BACKGROUND = (255, 255, 255)
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I;16S")
_WITH_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


def to_rgb(im):
    """A Pillow image of any mode as 8-bit RGB with its pixel values kept (ValueError when they cannot be:
    the file is then an unreadable image, listed in the manifest):

    - 16-bit grayscale (``I;16*``, 16-bit PNG and TIFF) is scaled, v x 255 / 65535 rounded; Pillow's
      convert would clip every value above 255 (a 16-bit photo became 99 % white);
    - 32-bit integers (``I``) are 16-bit values in 0..65535 (what older Pillow opens 16-bit files as) and
      scaled the same way; other ranges have no known scale;
    - 32-bit floats (``F``) in [0, 1] are scaled by 255 (convert truncates 0.5 to 0); others have no known scale;
    - transparency (RGBA, LA, PA, a palette with a transparent colour) is composited over ALPHA_BACKGROUND;
    - the rest (1, L, P, RGB, CMYK, YCbCr, LAB, HSV) by Pillow's conversion (palette lookup, CMYK/LAB/HSV).
    """
    from PIL import Image

    mode = im.mode
    if mode in _SIXTEEN_BIT or mode == "I":
        a = np.asarray(im).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"{mode} pixels range over {a.min()}..{a.max()}, outside 0..65535: unknown scale")
        return Image.fromarray(np.rint(a * (255.0 / 65535.0)).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise ValueError(
                f"floating-point pixels range over {a.min():.4g}..{a.max():.4g}, outside [0, 1]: unknown scale"
            )
        return Image.fromarray(np.rint(a * 255.0).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in _WITH_ALPHA:
        rgba = im.convert("RGBA") if mode != "La" else im.convert("LA").convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


_ZIPS: dict[str, zipfile.ZipFile] = {}  # per process: archives stay open while a split is decoded


def open_zip(path: str) -> zipfile.ZipFile:
    archive = _ZIPS.get(path)
    if archive is None:
        archive = _ZIPS[path] = zipfile.ZipFile(path)
    return archive


def close_zips() -> None:
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
    decoded (see ``MAX_IMAGE_PIXELS``). Every mode becomes RGB with its values kept (``to_rgb``: 16-bit
    scaled, transparency composited, ...), after the rotation its EXIF orientation asks for (as a photo
    viewer shows it).
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
        from PIL import Image, ImageOps

        if self.zip_prefix is None:
            source: object = Path(self.base) / name
        else:
            source = io.BytesIO(open_zip(self.base).read(self.zip_prefix + name))
        with warnings.catch_warnings():
            # Pillow warns about (and above twice the limit refuses) possible decompression bombs; the
            # size check below turns every image over the limit into one bad-image reason instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as im:  # reads the header only
                w, h = im.size
                if w * h > self.max_pixels:
                    raise ValueError(
                        f"{w}x{h} = {w * h:,} pixels exceeds the limit of {self.max_pixels:,} pixels (not decoded)"
                    )
                im = to_rgb(ImageOps.exif_transpose(im))  # decodes the whole file: truncated data raises here
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


def decoded_batches(split: ImageFiles, pool, workers: int) -> Iterator[tuple[int, list[str], tuple]]:
    """(offset, names, _decode_batch result) for consecutive batches, in order; with a pool
    at most 2 * workers batches are in flight, so memory stays bounded."""
    n = len(split.names)
    size = max(1, min(128, math.ceil(n / (4 * max(workers, 1)))))
    batches = ((i, split.names[i : i + size]) for i in range(0, n, size))
    if pool is None:
        for offset, names in batches:
            yield offset, names, _decode_batch(split.decoder, names)
        return
    ahead = deque(
        (offset, names, pool.submit(_decode_batch, split.decoder, names))
        for offset, names in itertools.islice(batches, 2 * workers)
    )
    while ahead:
        offset, names, future = ahead.popleft()
        nxt = next(batches, None)
        if nxt is not None:
            ahead.append((nxt[0], nxt[1], pool.submit(_decode_batch, split.decoder, nxt[1])))
        yield offset, names, future.result()
