"""Time eae.evaluation.fid.frechet_distance against pytorch-fid's calculate_frechet_distance, idle and busy.

    python benchmarks/frechet.py [--dims 2048] [--samples 3000] [--repeats 3] [--threads N]
                                 [--load idle,busy] [--busy-procs N]

All get the same float64 statistics (mean and covariance of random features with
correlated, non-negative, pool3-like activations, full rank when samples > dims). Three
contenders: ``eae`` (frechet_distance as called, one BLAS thread inside the call),
``eae-pools`` (frechet_distance(threads=None): the BLAS libraries' own thread pools, what
it did before), and ``pytorch-fid``. Runs are interleaved so machine load affects all alike;
prints the median seconds of each, the ratios and the relative difference of the values,
for each load:

- ``idle``: nothing else runs (on a shared machine: whatever else runs there);
- ``busy``: ``--busy-procs`` background processes (default: one per CPU) spin in pure Python,
  keeping every CPU busy, as a training run or a second evaluation would.

``--threads N`` caps the BLAS/LAPACK threads of pytorch-fid and eae-pools (threadpoolctl).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import time
import warnings

import numpy as np
from _results import add_json_argument, row, write

from eae.evaluation.fid import blas_threads, feature_statistics, frechet_distance


def activations(rng: np.random.Generator, n: int, d: int, shift: float) -> np.ndarray:
    """ReLU of correlated Gaussians: non-negative, skewed features with a realistic spectrum."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return np.maximum(rng.standard_normal((n, d)) @ mix + shift, 0.0)


def spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def load(kind: str, procs: int):
    """Nothing for ``idle``; ``procs`` spinning processes for ``busy`` (stopped afterwards)."""
    workers = []
    if kind == "busy":
        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=spin, daemon=True) for _ in range(procs)]
        for w in workers:
            w.start()
        time.sleep(1.0)  # let them start spinning
    try:
        yield
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS threads for pytorch-fid and eae-pools (default: the libraries' own)",
    )
    ap.add_argument("--load", default="idle,busy", help="comma-separated: idle, busy")
    ap.add_argument("--busy-procs", type=int, default=os.cpu_count() or 1)
    add_json_argument(ap)
    args = ap.parse_args()
    rows = []
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(args.seed)
    stats = (
        *feature_statistics(activations(rng, args.samples, args.dims, 0.2)),
        *feature_statistics(activations(rng, args.samples, args.dims, 0.3)),
    )
    contenders = {
        "eae": lambda: frechet_distance(*stats),
        "eae-pools": lambda: frechet_distance(*stats, threads=None),
        "pytorch-fid": lambda: calculate_frechet_distance(*stats),
    }
    limit = "default" if args.threads is None else args.threads
    print(
        f"dims {args.dims}, samples {args.samples}, repeats {args.repeats}, {os.cpu_count()} CPUs, "
        f"BLAS threads of pytorch-fid/eae-pools: {limit} (median seconds)"
    )
    for kind in args.load.split(","):
        times: dict[str, list[float]] = {name: [] for name in contenders}
        values: dict[str, float] = {}
        with load(kind, args.busy_procs), blas_threads(args.threads):
            for _ in range(args.repeats):
                for name, fn in contenders.items():
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        values[name] = float(fn())
                    times[name].append(time.perf_counter() - start)
        med = {name: statistics.median(t) for name, t in times.items()}
        rel = abs(values["eae"] - values["pytorch-fid"]) / abs(values["pytorch-fid"])
        busy = f" ({args.busy_procs} spinning processes)" if kind == "busy" else ""
        print(f"[{kind}{busy}]")
        for name in contenders:
            print(f"  {name:12s} {med[name]:8.3f} s   FID {values[name]!r}")
        print(
            f"  speed-up over pytorch-fid: eae {med['pytorch-fid'] / med['eae']:.1f}x, eae-pools "
            f"{med['pytorch-fid'] / med['eae-pools']:.1f}x; one thread vs pools {med['eae-pools'] / med['eae']:.1f}x; "
            f"relative difference {rel:.2e}"
        )
        per_repeat = [b / a for a, b in zip(times["eae"], times["pytorch-fid"])]
        rows.append(
            row(
                f"Fréchet distance: pytorch-fid time / eae time, {kind} machine ({args.dims}-d)",
                med["pytorch-fid"] / med["eae"],
                "x",
                (">=", 2.0),
                (min(per_repeat), max(per_repeat)),
                {"seconds": med, "relative_difference": rel, "busy_procs": args.busy_procs if kind == "busy" else 0},
            )
        )
    write(args.json, "frechet", rows)


if __name__ == "__main__":
    main()
