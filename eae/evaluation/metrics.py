"""Sample-quality metrics on feature vectors, besides the Fréchet distance (``eae.evaluation.fid``).

All take features [N, D] of generated and of real images from the same extractor (the digits
classifier's penultimate layer, or Inception pool3) and are computed by torch-fidelity's own
functions, so the numbers are the ones torch-fidelity reports for the same features:

- KID (Bińkowski et al. 2018): the unbiased MMD² estimate with the polynomial kernel
  k(x, y) = (x·y / D + 1)³, on ``subsets`` random pairs of subsets of ``subset_size`` rows
  (without replacement), reported as mean ± std over the subsets:
      MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1)) - 2 Σ_{i,j} k(x_i, y_j) / m²
  Unlike the Fréchet distance it is unbiased, so small sets (359 digits test images) do not
  inflate it.
- Precision and recall (Kynkäänniemi et al. 2019, k = 3): precision is the share of generated
  samples inside the real manifold (the union of balls around each real sample reaching its
  k-th nearest real neighbour), recall the share of real samples inside the generated manifold.
- Class coverage (digits): the share of generated images the classifier puts in each class and
  the entropy of those shares, log(K) when every class is equally frequent.
"""

from __future__ import annotations

import math

import numpy as np

from eae.errors import EAEError

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PR_NEIGHBOURHOOD = 3
# Memory of precision/recall's pairwise-distance blocks (rows x n distances; torch-fidelity holds ~20 bytes
# per distance: the block, its k-th value selection): the block rows follow from it, so the memory does
# not grow with the number of features n.
PR_BLOCK_BYTES = 256 * 2**20
PR_BYTES_PER_DISTANCE = 20


def pr_block_rows(n: int) -> int:
    """Rows of each block of distances to ``n`` features that stay within PR_BLOCK_BYTES (at least 1)."""
    return max(1, min(n, PR_BLOCK_BYTES // (PR_BYTES_PER_DISTANCE * max(n, 1))))


def _tensor(features: np.ndarray, what: str, dtype=np.float64):
    import torch

    a = np.asarray(features, dtype=dtype)
    if a.ndim != 2 or len(a) < 2:
        raise EAEError(f"{what}: need features [N >= 2, D], got shape {list(a.shape)}")
    if not np.isfinite(a).all():
        raise EAEError(f"{what}: features contain NaN or infinity")
    return torch.from_numpy(a)


def kid(
    generated: np.ndarray, real: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int | None = None, seed: int = 0
) -> dict:
    """KID as {"mean", "std", "subsets", "subset_size"}; subset_size defaults to
    min(1000, len(generated), len(real))."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    g, r = _tensor(generated, "KID generated"), _tensor(real, "KID real")
    if g.shape[1] != r.shape[1]:
        raise EAEError(f"KID: feature sizes differ ({g.shape[1]} vs {r.shape[1]})")
    size = subset_size or min(KID_SUBSET_SIZE, len(g), len(r))
    if not 2 <= size <= min(len(g), len(r)):
        raise EAEError(f"KID subset size {size} must be between 2 and the smaller set ({min(len(g), len(r))})")
    out = kid_features_to_metric(
        g,
        r,
        kid_subsets=subsets,
        kid_subset_size=size,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        rng_seed=seed,
        verbose=False,
    )
    return {
        "mean": float(out[KEY_METRIC_KID_MEAN]),
        "std": float(out[KEY_METRIC_KID_STD]),
        "subsets": subsets,
        "subset_size": size,
    }


def precision_recall(generated: np.ndarray, real: np.ndarray, k: int = PR_NEIGHBOURHOOD) -> dict:
    """{"precision", "recall"} of the generated features against the real ones (k-NN manifolds).

    The k-NN radii need every pairwise distance within and between the sets: time grows as n^2 D
    (n = the set size). The distances are computed in float32, as torch-fidelity does on the float32
    features its own extractors give, in blocks of ``pr_block_rows(n)`` rows (PR_BLOCK_BYTES of distances),
    so the memory does not grow with n while the time and the values stay those of fixed blocks
    (figures: docs/performance.md)."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    g = _tensor(generated, "precision/recall generated", np.float32)
    r = _tensor(real, "precision/recall real", np.float32)
    if min(len(g), len(r)) <= k:
        raise EAEError(f"precision/recall with k = {k} needs more than {k} samples on each side")
    out = prc_features_to_metric(
        g, r, prc_neighborhood=k, prc_batch_size=pr_block_rows(max(len(g), len(r))), save_cpu_ram=True, verbose=False
    )
    return {"precision": float(out[KEY_METRIC_PRECISION]), "recall": float(out[KEY_METRIC_RECALL])}


def class_coverage(predicted: np.ndarray, n_classes: int) -> dict:
    """{"shares": [K], "entropy", "max_entropy"} of predicted class indices:
    entropy = -Σ_c p_c log p_c (0 log 0 = 0), max_entropy = log K."""
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or len(predicted) == 0:
        raise EAEError(f"class coverage needs a non-empty 1-D array of class indices, got {list(predicted.shape)}")
    counts = np.bincount(predicted, minlength=n_classes)[:n_classes].astype(np.float64)
    shares = counts / counts.sum()
    nonzero = shares[shares > 0]
    return {
        "shares": [float(s) for s in shares],
        "entropy": float(-(nonzero * np.log(nonzero)).sum()),
        "max_entropy": math.log(n_classes),
    }
