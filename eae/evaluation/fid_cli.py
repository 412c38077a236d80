"""The command line of ``python -m eae.evaluation.fid`` (pytorch-fid's): argument parsing and the device choice
(``--device``, or cuda when torch sees one, as pytorch-fid's command line does); the library functions of
``eae.evaluation.fid`` take the device they are given.

Importing this module does not import torch: FID between two ``.npz`` files needs numpy only.
"""

from __future__ import annotations

import argparse
import os
import sys

from eae.errors import EAEError
from eae.evaluation.fid import (
    _is_stats_path,
    check_same_dims,
    folder_statistics,
    frechet_distance,
    load_statistics,
    save_statistics,
)


def _default_num_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return min(cpus, 8)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m eae.evaluation.fid",
        description="FID between two image folders or .npz statistics files, as pytorch-fid computes it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--batch-size", type=int, default=50, help="batch size to use")
    ap.add_argument("--num-workers", type=int, help="processes for data loading; defaults to min(8, num_cpus)")
    ap.add_argument(
        "--device", default=None, help="device to use, like cuda, cuda:0 or cpu (default: cuda if available)"
    )
    ap.add_argument(
        "--dims",
        type=int,
        default=2048,
        choices=[64, 192, 768, 2048],
        help="dimensionality of Inception features; 2048 is pool3",
    )
    ap.add_argument(
        "--save-stats", action="store_true", help="save the statistics of the first path to the second (an .npz file)"
    )
    ap.add_argument(
        "--weights",
        default=None,
        help="FID Inception weights file (default: $TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth)",
    )
    ap.add_argument("path", nargs=2, help="image folders or .npz statistics files")
    return ap


def _device(name: str | None):
    """The command line's device: ``--device`` or, as pytorch-fid's command line does, cuda when torch
    sees one (the library functions above take the device they are given)."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise EAEError(f"invalid device {name!r}: {' '.join(str(exc).split())}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EAEError(f"device {name} requested but CUDA is not available")
    return device


def run(args: argparse.Namespace) -> float | None:
    """The command line's work; EAEError for every problem with its inputs."""
    path_a, path_b = args.path
    inputs = [path_a] if args.save_stats else [path_a, path_b]
    for p in inputs:
        if not os.path.exists(p):
            raise EAEError(f"no such file or folder: {p}")
    if args.save_stats:
        if not _is_stats_path(path_b):
            path_b += ".npz"  # what pytorch-fid's np.savez_compressed does to the name
        if os.path.exists(path_b):
            raise EAEError(f"output file exists: {path_b}")
    if args.batch_size < 1:
        raise EAEError(f"--batch-size must be at least 1, got {args.batch_size}")
    num_workers = _default_num_workers() if args.num_workers is None else args.num_workers
    if num_workers < 0:
        raise EAEError(f"--num-workers must be at least 0, got {num_workers}")

    # Statistics files first: their problems show before any Inception work.
    stats = {p: load_statistics(p) for p in inputs if _is_stats_path(p)}
    folders = [p for p in inputs if not _is_stats_path(p)]
    if len(stats) == 2:
        check_same_dims(stats[path_a], stats[path_b], path_a, path_b)
    elif stats and folders:
        ((p, s),) = stats.items()
        if s[0].size != args.dims:
            raise EAEError(f"{p} holds {s[0].size}-d statistics but --dims is {args.dims}")
    if folders:
        from eae.evaluation.folders import image_files
        from eae.evaluation.inception import inception_extractor

        for p in folders:
            image_files(p)  # an empty folder fails before the model is loaded
        extract = inception_extractor(_device(args.device), args.dims, args.weights)
        for p in folders:
            stats[p] = folder_statistics(p, extract, args.batch_size, num_workers)

    if args.save_stats:
        save_statistics(path_b, *stats[path_a])
        print(f"Saved {stats[path_a][0].size}-d statistics of {path_a} to {path_b}")
        return None
    return frechet_distance(*stats[path_a], *stats[path_b])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        value = run(args)
    except (EAEError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if value is not None:
        print("FID: ", value)  # pytorch-fid's output line
    return 0
