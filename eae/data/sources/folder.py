"""Any folder of images (recursive): a split file or a seeded random split."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path, PurePosixPath

from eae.data.decode import IMAGE_EXTENSIONS, ImageDecoder, ImageFiles
from eae.data.sources.common import seeded_split
from eae.errors import EAEError

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")

log = logging.getLogger(__name__)


def _scan_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under root (recursive, hidden entries skipped), sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        found += [
            (rel / f).as_posix()
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        ]
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
            raise EAEError(
                f"{path}:{number}: {name} is outside data.root (split files list paths relative to it, without '..')"
            )
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


def load_folder_source(
    *,
    root: str | Path,
    image_size: int,
    test_fraction: float = 0.2,
    seed: int = 0,
    crop: str = "center",
    split_file: str | None = None,
    download: bool = False,
    **_: object,
) -> dict[str, ImageFiles]:
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
    return {
        "train": ImageFiles([names[i] for i in train], decoder),
        "test": ImageFiles([names[i] for i in test], decoder),
    }
