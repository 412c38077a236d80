"""Image folders for the FID, read exactly as pytorch-fid reads them.

Files: every ``*.<ext>`` directly in the folder for pytorch-fid's ``IMAGE_EXTENSIONS``
(case-sensitive, not recursive), sorted by path. Pixels: PIL ``Image.open(f).convert('RGB')``
then torchvision's ``ToTensor()`` -> float32 [3, H, W] in [0, 1]. Batches of
``batch_size`` images in file order (the last one may be smaller; ``batch_size`` larger
than the folder is clamped to its size, as pytorch-fid does).

Unlike pytorch-fid, a folder without images, an unreadable image or images of different
sizes are one-line ``EAEError``s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch

from eae.errors import EAEError

# pytorch_fid.fid_score.IMAGE_EXTENSIONS (0.3.0); a test checks they agree.
IMAGE_EXTENSIONS = frozenset({"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"})


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The images of ``folder`` in pytorch-fid's order; an EAEError if there are none."""
    path = Path(folder)
    if not path.is_dir():
        raise EAEError(f"no such folder: {folder}")
    files = sorted([file for ext in IMAGE_EXTENSIONS for file in path.glob(f"*.{ext}")])
    if not files:
        raise EAEError(f"no images in {folder} (looked for *.{{{','.join(sorted(IMAGE_EXTENSIONS))}}})")
    return files


class _ImageFiles(torch.utils.data.Dataset):
    """One image file -> float32 [3, H, W] tensor, or an error message (so that a bad
    file becomes one clear line even when read in a DataLoader worker)."""

    def __init__(self, files: list[Path]):
        self.files = files
        from torchvision.transforms import ToTensor

        self.to_tensor = ToTensor()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor | str:
        from PIL import Image

        path = self.files[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return f"cannot read image {path}: {' '.join(str(exc).split())}"
        return self.to_tensor(img)


def image_batches(files: list[Path], batch_size: int, num_workers: int = 0) -> Iterator[torch.Tensor]:
    """float32 batches [B, 3, H, W] in [0, 1] of ``files``, in order, on the CPU."""
    if batch_size < 1:
        raise EAEError(f"batch size must be at least 1, got {batch_size}")
    if num_workers < 0:
        raise EAEError(f"number of workers must be at least 0, got {num_workers}")
    loader = torch.utils.data.DataLoader(
        _ImageFiles(files),
        batch_size=min(batch_size, len(files)),
        shuffle=False,
        drop_last=False,
        num_workers=num_workers,
        collate_fn=list,
    )
    first_shape = None
    start = 0
    for items in loader:
        for i, item in enumerate(items):
            if isinstance(item, str):
                raise EAEError(item)
            if first_shape is None:
                first_shape = item.shape
            elif item.shape != first_shape:
                raise EAEError(
                    f"images differ in size: {files[start + i]} is {item.shape[2]}x{item.shape[1]}, "
                    f"{files[0]} is {first_shape[2]}x{first_shape[1]} (width x height)"
                )
        start += len(items)
        yield torch.stack(items)
