"""Fréchet distance between Gaussians fitted to feature activations (the FID formula),
pytorch-fid's ``.npz`` statistics files, and a pytorch-fid compatible command line:

    python -m eae.evaluation.fid PATH_A PATH_B [--device cpu] [--batch-size 50] [--dims 2048]
                      [--num-workers N] [--save-stats] [--weights pt_inception-....pth]

Each path is an image folder or a ``.npz`` statistics file (keys ``mu``, ``sigma``), as
for ``python -m pytorch_fid``; with ``--save-stats`` the statistics of PATH_A are saved to
PATH_B (the command line lives in ``eae.evaluation.fid_cli``). Images go through pytorch-fid's own FID
Inception (``eae.evaluation.inception``) after being read exactly as pytorch-fid reads them
(``eae.evaluation.folders``), so the value agrees with pytorch-fid's to round-off, while the distance
itself is computed exactly (float64, symmetric eigenvalues, no ``scipy.linalg.sqrtm``).

Importing this module does not import torch: the math and the ``.npz`` files need numpy only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from eae.errors import EAEError

STATS_KEYS = ("mu", "sigma")


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise EAEError(f"need at least 2 feature rows of shape [N, D], got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues clipped)."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _symmetric_factor(sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, S) with F F^T = one covariance and S the other: the Cholesky factor of whichever
    is positive definite, else the symmetric square root of sigma1 (slower, but any PSD)."""
    for a, b in ((sigma1, sigma2), (sigma2, sigma1)):
        try:
            return np.linalg.cholesky(a), b
        except np.linalg.LinAlgError:
            pass
    return _sqrt_psd(sigma1), sigma2


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(sigma1 sigma2) for symmetric PSD sigma1, sigma2 (float64).

    With F F^T = sigma1, sigma1 sigma2 is similar to the symmetric PSD matrix F^T sigma2 F,
    so the trace is the sum of square roots of the latter's eigenvalues (tiny negative
    ones from round-off clipped to 0). F is a Cholesky factor when possible: one Cholesky,
    two products and one eigenvalues-only decomposition.
    """
    f, other = _symmetric_factor(sigma1, sigma2)
    m = f.T @ (other @ f)
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def blas_threads(n: int | None):
    """A context limiting the BLAS/LAPACK thread pools to ``n`` threads (threadpoolctl; a no-op
    when ``n`` is None or threadpoolctl is not installed)."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, threads: int | None = 1
) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr( (sigma1 sigma2)^(1/2) )

    The trace term is computed by ``trace_sqrt_product`` with symmetric eigenvalue
    decompositions in float64 (no scipy.linalg.sqrtm, no complex parts), so it is exact
    to round-off also for singular covariances. The result is clipped at 0.

    ``threads``: BLAS threads during the call (``blas_threads``; None = the library's own pool).
    One by default: OpenBLAS threads spin-wait on each other, so when other processes keep the
    CPUs busy a multi-threaded eigendecomposition gets several times slower, while one thread
    loses little on an idle machine (benchmarks/frechet.py measures both).
    """
    with blas_threads(threads):
        return _frechet_distance(mu1, sigma1, mu2, sigma2)


def _frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise EAEError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    if not (
        np.isfinite(mu1).all() and np.isfinite(mu2).all() and np.isfinite(sigma1).all() and np.isfinite(sigma2).all()
    ):
        raise EAEError("statistics contain NaN or infinity")
    tr_covmean = trace_sqrt_product(0.5 * (sigma1 + sigma1.T), 0.5 * (sigma2 + sigma2.T))
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


# --- pytorch-fid's statistics files ------------------------------------------------------


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(mu [D], sigma [D, D]) in float64 from a pytorch-fid ``--save-stats`` .npz file."""
    path = Path(path)
    if not path.is_file():
        raise EAEError(f"no such statistics file: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise EAEError(f"{path} is not an .npz archive of FID statistics (keys mu, sigma)")
        with data:
            missing = [k for k in STATS_KEYS if k not in data.files]
            if missing:
                raise EAEError(
                    f"statistics file {path} lacks {', '.join(missing)} (has: {', '.join(data.files) or 'nothing'})"
                )
            mu, sigma = data["mu"], data["sigma"]
    except EAEError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise EAEError(f"corrupt statistics file {path}: {' '.join(str(exc).split())}") from None
    if not (np.issubdtype(mu.dtype, np.number) and np.issubdtype(sigma.dtype, np.number)):
        raise EAEError(f"statistics file {path} holds non-numeric mu or sigma")
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise EAEError(
            f"statistics file {path} has mu of shape {list(mu.shape)} and sigma of shape {list(sigma.shape)}, "
            "expected [D] and [D, D]"
        )
    return mu.astype(np.float64), sigma.astype(np.float64)


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> None:
    """Write ``mu``, ``sigma`` as pytorch-fid does (``np.savez_compressed``), atomically, to
    exactly ``path``."""
    from eae.io import atomic_path

    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise EAEError(f"statistics must be mu [D] and sigma [D, D], got {list(mu.shape)} and {list(sigma.shape)}")
    with atomic_path(path, suffix=".npz") as tmp:  # a .npz suffix keeps numpy from appending one
        np.savez_compressed(tmp, mu=mu, sigma=sigma)


def check_same_dims(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], name_a: str, name_b: str
) -> None:
    """EAEError unless two (mu, sigma) statistics have the same feature dimension."""
    if a[0].shape != b[0].shape:
        raise EAEError(f"statistics of different dimensions: {name_a} is {a[0].size}-d, {name_b} is {b[0].size}-d")


# --- command line --------------------------------------------------------------------------


def _is_stats_path(path: str) -> bool:
    return path.endswith(".npz")  # pytorch-fid's rule


def folder_statistics(folder: str | os.PathLike, extract, batch_size: int, num_workers: int = 0):
    """(mu, sigma) of the features of the images in ``folder`` (pytorch-fid's
    ``compute_statistics_of_path`` for a folder); ``extract`` is an ``InceptionExtractor``
    (any feature extractor with a ``dims`` attribute)."""
    import torch

    from eae.evaluation.folders import image_batches, image_files

    files = image_files(folder)
    if len(files) < 2:
        raise EAEError(f"need at least 2 images for FID statistics, {folder} has {len(files)}")
    features = np.empty((len(files), extract.dims))  # float64, like pytorch-fid's get_activations
    start = 0
    with torch.no_grad():
        for batch in image_batches(files, batch_size, num_workers):
            features[start : start + len(batch)] = extract(batch).cpu().numpy()
            start += len(batch)
    return feature_statistics(features)


def main(argv: list[str] | None = None) -> int:
    """``python -m eae.evaluation.fid``: the command line (``eae.evaluation.fid_cli``, which chooses the device)."""
    from eae.evaluation.fid_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
