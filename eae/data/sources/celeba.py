"""CelebA (torchvision's layout): official partition, centre crop 140, resize."""

from __future__ import annotations

import zipfile
from pathlib import Path

from eae.data.decode import CELEBA_CROP, ImageDecoder, ImageFiles, close_zips, open_zip
from eae.data.sources.common import torchvision_download
from eae.errors import EAEError

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
        raise EAEError(
            f"missing {path}: CelebA's official partition file is needed "
            f"(lines '000001.jpg 0'; 0 train, 1 valid, 2 test)"
        ) from None
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


def load_celeba_source(
    *, root: str | Path, image_size: int, download: bool = False, **_: object
) -> dict[str, ImageFiles]:
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

        torchvision_download("celeba", root, fetch, _CELEBA_EXPECTED)
        d = _celeba_dir(root)
        images, archive = d / "img_align_celeba", d / "img_align_celeba.zip"
        have_images = images.is_dir() or archive.is_file()
    if not root.is_dir():
        raise EAEError(
            f"data.root {root} does not exist: it should hold CelebA's {_CELEBA_EXPECTED} (or set data.download: true)"
        )
    if not have_images:
        raise EAEError(f"no CelebA images under {d}: expected {images}/ or {archive}")
    partition = _read_celeba_partition(d / "list_eval_partition.txt")
    if images.is_dir():
        decoder = ImageDecoder(str(images), image_size, crop="fixed", crop_size=CELEBA_CROP)
    else:
        try:
            members = open_zip(str(archive)).namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise EAEError(f"cannot open {archive}: {exc}") from None
        finally:
            close_zips()
        prefix = "img_align_celeba/" if any(m.startswith("img_align_celeba/") for m in members) else ""
        decoder = ImageDecoder(str(archive), image_size, crop="fixed", crop_size=CELEBA_CROP, zip_prefix=prefix)
    return {name: ImageFiles(files, decoder) for name, files in partition.items()}
