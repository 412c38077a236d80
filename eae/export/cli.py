"""The command line of the exported generator: ``python -m eae.export.runtime {sample,info}`` and the console
scripts ``eae-sample`` and ``eae-info``. It parses the arguments and chooses the device (``--device auto``:
cuda when onnxruntime can run there, ``eae.export.runtime.cuda_usable``); the library (``Generator``) runs
on the device it is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eae.errors import EAEError
from eae.export.card import card_path
from eae.export.runtime import (
    DEFAULT_CHUNK,
    MAX_GRID,
    MAX_SAMPLES,
    Generator,
    check_request,
    cuda_usable,
    grid_png,
)


def check_output_paths(model: str | Path, png: str | None, npy: str | None) -> None:
    """Refuse outputs that would overwrite the model, its card or the decoder beside it, or whose
    suffix does not match what is written (-o writes a PNG, --npy a .npy)."""
    model = Path(model)
    protected = {p.resolve(): p for p in (model, card_path(model), model.with_name("decoder.onnx"))}
    for flag, value, suffix in (("-o", png, ".png"), ("--npy", npy, ".npy")):
        if value is None:
            continue
        target = Path(value)
        if target.resolve() in protected:
            raise EAEError(f"{flag} {value} would overwrite the model file {protected[target.resolve()]}")
        if target.suffix.lower() != suffix:
            raise EAEError(f"{flag} {value}: expected a {suffix} file name ({flag} writes {suffix[1:].upper()})")
        if target.is_dir():
            raise EAEError(f"{flag} {value} is a directory")


def write_npy_stream(path: str | Path, chunks: Iterator[np.ndarray], n: int, image_shape: tuple[int, ...]) -> None:
    """Write ``n`` uint8 images arriving in chunks to one .npy (header, then each chunk as it comes),
    atomically; memory stays flat in n. Refuses up front when the file cannot fit on the disk."""
    import shutil

    from eae.io import atomic_path, human_bytes

    path = Path(path)
    nbytes = n * int(np.prod(image_shape))
    folder = path.absolute().parent
    while not folder.exists():  # atomic_path creates the missing folders
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise EAEError(
            f"--npy {path}: {n:,} images need {human_bytes(nbytes)}, only {human_bytes(free)} free on {folder}"
        )
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
        "fortran_order": False,
        "shape": (n, *image_shape),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        written = 0
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=np.uint8).tobytes())
            written += len(chunk)
        if written != n:
            raise EAEError(f"--npy {path}: got {written} images, expected {n}")


def save_grid_png(images_nhwc: np.ndarray, path: str | Path, ncol: int | None = None) -> None:
    """``grid_png`` written to ``path`` atomically."""
    from eae.io import atomic_path

    data = grid_png(images_nhwc, ncol)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def main(argv: list[str] | None = None, script: str | None = None) -> int:
    """``python -m eae.export.runtime {sample,info} ...``; ``script``: the console script that runs one command
    (its name is the usage line's program)."""
    ap = argparse.ArgumentParser(
        prog="python -m eae.export.runtime", description="Run the EAE ONNX generator (no torch)."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("sample", "info"):
        p = sub.add_parser(name, prog=script)
        p.add_argument("model", help="generator.onnx")
        p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        p.add_argument("--no-verify", action="store_true", help="skip the sha256 check against the model card")
        if name == "sample":
            p.add_argument(
                "-n", type=int, default=64, help=f"number of images (at most {MAX_SAMPLES:,}; -o at most {MAX_GRID})"
            )
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("-o", "--output", help="PNG grid to write")
            p.add_argument("--npy", help="write raw uint8 NHWC images to this .npy")
            p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK)
    args = ap.parse_args(argv)
    if args.device == "auto":  # the command line chooses the device; the library never does
        args.device = "cuda" if cuda_usable() else "cpu"
    try:
        if args.command == "info":
            gen = Generator(args.model, device=args.device, verify=not args.no_verify)
            print(json.dumps(gen.info(), indent=2))
            return 0
        if not args.output and not args.npy:
            raise EAEError("nothing to write: give -o samples.png and/or --npy samples.npy")
        check_request(args.n, args.seed)
        if args.output and args.n > MAX_GRID:
            raise EAEError(
                f"-o: a PNG grid holds at most {MAX_GRID} images (got -n {args.n:,}); "
                "write larger samples with --npy only"
            )
        check_output_paths(args.model, args.output, args.npy)
        gen = Generator(args.model, device=args.device, verify=not args.no_verify, chunk_size=args.chunk_size)
        shape = (*gen.image_shape[1:], gen.image_shape[0])  # H, W, C
        kept: list[np.ndarray] = []  # for the PNG grid (at most MAX_GRID images)

        def chunks() -> Iterator[np.ndarray]:
            for chunk in gen.iter_samples(args.n, seed=args.seed):
                if args.output:
                    kept.append(chunk)
                yield chunk

        if args.npy:
            write_npy_stream(args.npy, chunks(), args.n, shape)
        else:
            for _ in chunks():
                pass
        if args.output:
            save_grid_png(np.concatenate(kept), args.output)
        print(
            f"wrote {args.n} images {list(shape)} (seed {args.seed}, providers "
            f"{','.join(gen.providers)}) to {', '.join(filter(None, [args.output, args.npy]))}"
        )
        return 0
    except EAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # names the file and the reason (a bare errno line named neither)
        from eae.io import os_error_message

        print(f"error: {os_error_message(exc, action='cannot use')}", file=sys.stderr)
        return 2


def sample_main(argv: list[str] | None = None) -> int:
    """Console script ``eae-sample MODEL [-n N] [--seed S] [-o grid.png] [--npy images.npy]``: ``main``'s sample."""
    return main(["sample", *(sys.argv[1:] if argv is None else argv)], script="eae-sample")


def info_main(argv: list[str] | None = None) -> int:
    """Console script ``eae-info MODEL``: ``main``'s info."""
    return main(["info", *(sys.argv[1:] if argv is None else argv)], script="eae-info")
