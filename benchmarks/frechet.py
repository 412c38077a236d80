"""Time eae.fid.frechet_distance against pytorch-fid's calculate_frechet_distance.

    python benchmarks/frechet.py [--dims 2048] [--samples 3000] [--repeats 3] [--threads N]

Both get the same float64 statistics (mean and covariance of random features with
correlated, non-negative, pool3-like activations, full rank when samples > dims). Runs are
interleaved (eae, pytorch-fid, eae, ...) so machine load affects both alike; prints the
median seconds of each, their ratio and the relative difference of the values.

``--threads N`` caps the BLAS/LAPACK threads of both (threadpoolctl); on a small, busy
machine the default thread pools mostly wait on each other (numpy and scipy each bring
their own OpenBLAS), which slows both and blurs the comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings

import numpy as np

from eae.fid import feature_statistics, frechet_distance


def activations(rng: np.random.Generator, n: int, d: int, shift: float) -> np.ndarray:
    """ReLU of correlated Gaussians: non-negative, skewed features with a realistic spectrum."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return np.maximum(rng.standard_normal((n, d)) @ mix + shift, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads for both (default: the libraries' own)")
    args = ap.parse_args()
    if args.threads is None:
        limits = contextlib.nullcontext()
    else:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.threads)
    with limits:
        run(args)


def run(args: argparse.Namespace) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(args.seed)
    mu1, sigma1 = feature_statistics(activations(rng, args.samples, args.dims, 0.2))
    mu2, sigma2 = feature_statistics(activations(rng, args.samples, args.dims, 0.3))

    def timed(fn):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(fn(mu1, sigma1, mu2, sigma2))
        return time.perf_counter() - t, value

    times = {"eae": [], "pytorch-fid": []}
    values = {}
    for _ in range(args.repeats):
        for name, fn in (("eae", frechet_distance), ("pytorch-fid", calculate_frechet_distance)):
            seconds, values[name] = timed(fn)
            times[name].append(seconds)
    t_eae, t_pf = statistics.median(times["eae"]), statistics.median(times["pytorch-fid"])
    rel = abs(values["eae"] - values["pytorch-fid"]) / abs(values["pytorch-fid"])
    threads = "default" if args.threads is None else args.threads
    print(f"dims {args.dims}, samples {args.samples}, repeats {args.repeats}, BLAS threads {threads} (median seconds)")
    print(f"eae.fid.frechet_distance:                {t_eae:8.3f} s   FID {values['eae']!r}")
    print(f"pytorch_fid calculate_frechet_distance:  {t_pf:8.3f} s   FID {values['pytorch-fid']!r}")
    print(f"speed-up {t_pf / t_eae:.1f}x, relative difference {rel:.2e}")


if __name__ == "__main__":
    main()
