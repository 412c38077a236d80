"""Epochs/s reading the prepared uint8 shards vs decoding JPEGs every epoch with torchvision.

    python benchmarks/data_loading.py [--images 2000] [--workers 0]

Makes a CelebA-like fixture (178x218 JPEGs + partition file) in a temporary folder, prepares
it once with the prepare stage's code (crop 140, resize 64, uint8 shards), then times full
passes in batches of 100 as float tensors in [0, 1]:
  shards:       np.load of the shards every epoch + uint8 -> float per batch
  in memory:    the shards loaded once, uint8 -> float per batch (what the train stage does)
  ImageFolder:  torchvision ImageFolder + CenterCrop(140) + Resize(64) + ToTensor via DataLoader
Prints epochs/s for both and the ratio, measured in one run. Goal: >= 20x.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import add_json_argument, row, write


def make_fixture(root: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    lines = []
    for i in range(1, n + 1):
        # Smooth random images (JPEG-friendly, like photos), 178 x 218.
        small = rng.integers(0, 256, (28, 23, 3), dtype=np.uint8)
        Image.fromarray(small).resize((178, 218), Image.BILINEAR).save(images / f"{i:06d}.jpg", quality=90)
        lines.append(f"{i:06d}.jpg {0 if i <= 0.8 * n else 2}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    # ImageFolder wants class subfolders: link the same files under one class.
    (root / "folder").mkdir()
    (root / "folder" / "all").symlink_to(images, target_is_directory=True)


def time_epochs(run_epoch, min_seconds: float = 3.0) -> float:
    run_epoch()  # warm-up (file cache, workers)
    n, start = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - start < min_seconds:
        run_epoch()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers for ImageFolder")
    add_json_argument(ap)
    args = ap.parse_args()
    from torchvision import datasets, transforms

    from eae.data.batches import batches
    from eae.data.prepare import write_prepared
    from eae.data.prepared import read_split
    from eae.data.sources import load_source

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_fixture(root, args.images)
        prepared = root / "prepared"
        prepared.mkdir()
        start = time.perf_counter()
        write_prepared(prepared, load_source("celeba", root=root, image_size=64), "celeba", shard_size=1000)
        prep_s = time.perf_counter() - start

        def shards_epoch():
            images = torch.from_numpy(read_split(prepared, "train").images)
            for x in batches(images, 100, torch.Generator().manual_seed(0)):
                x.sum()

        resident = torch.from_numpy(read_split(prepared, "train").images)

        def memory_epoch():
            for x in batches(resident, 100, torch.Generator().manual_seed(0)):
                x.sum()

        tf = transforms.Compose([transforms.CenterCrop(140), transforms.Resize(64), transforms.ToTensor()])
        loader = torch.utils.data.DataLoader(
            datasets.ImageFolder(root / "folder", transform=tf), batch_size=100, shuffle=True, num_workers=args.workers
        )

        def folder_epoch():
            for x, _ in loader:
                x.sum()

        shard_rate, memory_rate = time_epochs(shards_epoch), time_epochs(memory_epoch)
        folder_rate = time_epochs(folder_epoch)
    print(
        f"{args.images} images 178x218 -> 3x64x64; one-off prepare {prep_s:.1f} s; "
        f"torch threads {torch.get_num_threads()}, ImageFolder workers {args.workers}"
    )
    print(f"shards (read each epoch) {shard_rate:9.2f} epochs/s  ratio {shard_rate / folder_rate:7.1f}x")
    print(f"shards (in memory)       {memory_rate:9.2f} epochs/s  ratio {memory_rate / folder_rate:7.1f}x")
    print(f"ImageFolder + transforms {folder_rate:9.2f} epochs/s")
    details = {
        "images": args.images,
        "epochs_per_s": {"shards": shard_rate, "in_memory": memory_rate, "imagefolder": folder_rate},
        "prepare_s": prep_s,
    }
    write(
        args.json,
        "data_loading",
        [
            row(
                "prepared shards (read each epoch) / ImageFolder decoding",
                shard_rate / folder_rate,
                "x",
                (">=", 20.0),
                details=details,
            ),
            row(
                "prepared shards (in memory, as training) / ImageFolder decoding",
                memory_rate / folder_rate,
                "x",
                details=details,
            ),
        ],
    )


if __name__ == "__main__":
    main()
