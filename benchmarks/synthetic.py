"""Stand-ins for files this machine cannot download: raw datasets in their real on-disk layouts with
generated pictures (not real data), and FID Inception weights with seeded random values. Used by
benchmarks/scale.py, scripts/device_check.sh and the tests (tests/helpers re-export them).

    python benchmarks/synthetic.py celeba DIR --images 20000 [--workers 8]   # DIR: img_align_celeba/ + partition
    python benchmarks/synthetic.py inception TORCH_HOME                      # random-weight FID Inception

CelebA: ``img_align_celeba/000001.jpg ...`` (178x218 JPEGs) and ``list_eval_partition.txt`` with the
official split's proportions (162,770 / 19,867 / 19,962 of 202,599; the first files train, then valid,
then test, as in the real file). Image i is a colour gradient with blocky noise from its own seeded
generator, so the files do not depend on the worker count and a folder is extended, never redone:
``generate_celeba_images`` writes only the files that are missing (each written under a temporary
name, then renamed), which makes a folder a cache across runs.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CELEBA_SIZE = (178, 218)  # width, height of img_align_celeba's images
CELEBA_PARTITION = (162_770, 19_867, 19_962)  # official train / valid / test counts (list_eval_partition.txt)
GENERATOR = "eae-synthetic-celeba/1"  # changes when the pictures change: a cache made by another version is redone
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"  # the name pytorch-fid looks for in torch hub's cache


@functools.cache
def _gradient(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1)


def jpeg_bytes(rng: np.random.Generator, size: tuple[int, int] = CELEBA_SIZE) -> bytes:
    """A smooth gradient with blocky noise, JPEG-encoded at CelebA's 178x218 by default."""
    from PIL import Image

    w, h = size
    base = _gradient(w, h)
    noise = rng.integers(0, 40, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def celeba_name(i: int) -> str:
    """File name of image i (0-based), as CelebA numbers them: 000001.jpg, ..."""
    return f"{i + 1:06d}.jpg"


def celeba_counts(n: int) -> tuple[int, int, int]:
    """Train / valid / test counts of n images in the official partition's proportions
    (each split at least one image)."""
    if n < 3:
        raise ValueError(f"a CelebA layout needs at least 3 images (train, valid, test), got {n}")
    total = sum(CELEBA_PARTITION)
    valid = max(1, round(n * CELEBA_PARTITION[1] / total))
    test = max(1, round(n * CELEBA_PARTITION[2] / total))
    return n - valid - test, valid, test


def _write_images(folder: str, indices: list[int], seed: int) -> int:
    written = 0
    for i in indices:
        path = os.path.join(folder, celeba_name(i))
        if os.path.exists(path):
            continue
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(jpeg_bytes(np.random.default_rng([seed, i])))
        os.replace(tmp, path)
        written += 1
    return written


def generate_celeba_images(folder: str | os.PathLike, n: int, workers: int = 0, seed: int = 0, progress=None) -> int:
    """Make sure ``folder`` holds images 0 .. n-1 (000001.jpg ...); writes the missing ones with
    ``workers`` processes (0 = this process) and returns how many it wrote. A folder made by another
    generator version or seed (``synthetic.json``) is emptied first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "synthetic.json"
    want = {"generator": GENERATOR, "seed": seed, "size": list(CELEBA_SIZE)}
    if stamp.exists() and json.loads(stamp.read_text()) != want:
        for f in folder.glob("*.jpg"):
            f.unlink()
    stamp.write_text(json.dumps(want) + "\n")
    missing = [i for i in range(n) if not (folder / celeba_name(i)).exists()]
    chunks = [missing[k : k + 500] for k in range(0, len(missing), 500)]
    written = 0
    if workers > 0 and len(chunks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for done, chunk in zip(
                pool.map(_write_images, [str(folder)] * len(chunks), chunks, [seed] * len(chunks)), chunks
            ):
                written += done
                if progress is not None:
                    progress.update(len(chunk))
    else:
        for chunk in chunks:
            written += _write_images(str(folder), chunk, seed)
            if progress is not None:
                progress.update(len(chunk))
    return written


def write_celeba_partition(root: str | os.PathLike, n: int) -> tuple[int, int, int]:
    """``root/list_eval_partition.txt`` for images 0 .. n-1 (first train, then valid, then test)."""
    counts = celeba_counts(n)
    labels = np.repeat([0, 1, 2], counts)
    text = "".join(f"{celeba_name(i)} {labels[i]}\n" for i in range(n))
    (Path(root) / "list_eval_partition.txt").write_text(text)
    return counts


def celeba_folder(root: str | os.PathLike, n: int, workers: int = 0, seed: int = 0, images=None, progress=None) -> Path:
    """A CelebA root of n images: ``root/img_align_celeba/`` and ``root/list_eval_partition.txt``.
    ``images``: a folder of generated images shared between roots (a cache: it may hold more than n;
    ``root/img_align_celeba`` then links to it), else the images are written into root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / "img_align_celeba"
    if images is None:
        generate_celeba_images(target, n, workers, seed, progress)
    else:
        generate_celeba_images(images, n, workers, seed, progress)
        if target.is_symlink() or target.exists():
            if not (target.is_symlink() and target.resolve() == Path(images).resolve()):
                raise FileExistsError(f"{target} exists and is not a link to {images}")
        else:
            target.symlink_to(Path(images).resolve(), target_is_directory=True)
    write_celeba_partition(root, n)
    return root


def random_fid_inception_state(seed: int = 0) -> dict:
    """State dict of pytorch-fid's FID Inception architecture with seeded random weights
    (``fid_inception_v3`` without its download)."""
    import torch
    from pytorch_fid import inception as pf_inception

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = pf_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = pf_inception.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pf_inception.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pf_inception.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pf_inception.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pf_inception.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pf_inception.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pf_inception.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pf_inception.FIDInceptionE_1(1280)
        net.Mixed_7c = pf_inception.FIDInceptionE_2(2048)
    return net.state_dict()


def write_random_inception(torch_home: str | os.PathLike, seed: int = 0) -> Path:
    """Random-weight FID Inception weights where pytorch-fid and the pipeline look for the real ones
    (``$TORCH_HOME/hub/checkpoints/``); returns the file."""
    import torch

    path = Path(torch_home) / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_fid_inception_state(seed), path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("celeba", help="a CelebA root: img_align_celeba/ + list_eval_partition.txt")
    c.add_argument("root")
    c.add_argument("--images", type=int, required=True)
    c.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--cache", help="folder of generated images shared between roots (root links to it)")
    i = sub.add_parser("inception", help="random-weight FID Inception weights under TORCH_HOME/hub/checkpoints/")
    i.add_argument("torch_home")
    i.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.what == "celeba":
        root = celeba_folder(args.root, args.images, args.workers, args.seed, images=args.cache)
        print(f"{root}: {args.images} images, partition {celeba_counts(args.images)}")
    else:
        print(write_random_inception(args.torch_home, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
