import math

import numpy as np
import pytest

from eae.errors import EAEError
from eae.evaluation.metrics import class_coverage, kid, precision_recall


def direct_kid(x, y):
    """Unbiased MMD² with k(a, b) = (a·b / D + 1)³ as a plain double sum."""
    m, d = x.shape

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_estimate_of_a_direct_double_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(1.0, 1.0, size=(6, 3))
    # One subset holding every row: the estimate of exactly these sets, whatever the subset draw.
    got = kid(x, y, subsets=3, subset_size=6)
    assert got["mean"] == pytest.approx(direct_kid(x, y), rel=1e-9)
    assert got["std"] == pytest.approx(0.0, abs=1e-9)


def test_kid_of_identical_sets_is_about_zero_and_of_shifted_sets_is_not():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 8))
    shifted = kid(x, x + 1.0, subsets=20, subset_size=400)["mean"]
    assert shifted > 5.0
    # The same rows on both sides (the unbiased estimator leaves the x-y diagonal in: a tiny negative offset).
    assert abs(kid(x, x.copy(), subsets=2, subset_size=800)["mean"]) < 0.005 * shifted
    # Two independent samples of one law: zero within the subset noise.
    same_law = kid(x, rng.normal(size=(800, 8)), subsets=20, subset_size=400)
    assert abs(same_law["mean"]) < 3 * same_law["std"] and abs(same_law["mean"]) < 0.02
    assert kid(x[:50], x)["subset_size"] == 50


def test_precision_recall_of_identical_sets_is_one_and_of_far_sets_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    assert precision_recall(x, x.copy()) == {"precision": 1.0, "recall": 1.0}
    assert precision_recall(x + 100.0, x) == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_see_mode_dropping():
    """Generated samples covering one of two real clusters: full precision, recall about half."""
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 20])
    generated = rng.normal(size=(600, 2))
    pr = precision_recall(generated, real)
    assert pr["precision"] > 0.95 and 0.4 < pr["recall"] < 0.6


def test_class_coverage():
    uniform = class_coverage(np.arange(100) % 10, 10)
    assert uniform["shares"] == [0.1] * 10 and uniform["entropy"] == pytest.approx(math.log(10))
    one = class_coverage(np.zeros(5, dtype=int), 10)
    assert one["entropy"] == 0.0 and one["shares"][0] == 1.0 and one["max_entropy"] == pytest.approx(math.log(10))


def test_bad_features_are_one_line_errors():
    with pytest.raises(EAEError, match="NaN"):
        kid(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(EAEError, match="feature sizes differ"):
        kid(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(EAEError, match="more than 3 samples"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


def test_precision_recall_in_float32_blocks_equals_float64_in_one_block(monkeypatch):
    import torch
    from torch_fidelity.metric_prc import prc_features_to_metric

    from eae.evaluation import metrics

    rng = np.random.default_rng(3)
    low = rng.standard_normal((64, 4))  # features near a 4-d manifold
    generated = np.abs(rng.standard_normal((300, 4)) @ low.T) + 0.05 * rng.standard_normal((300, 64))
    real = np.abs(1.2 * rng.standard_normal((300, 4)) @ low.T) + 0.05 * rng.standard_normal((300, 64))
    reference = prc_features_to_metric(
        torch.from_numpy(generated), torch.from_numpy(real), prc_neighborhood=3, prc_batch_size=10_000, verbose=False
    )
    monkeypatch.setattr(metrics, "PR_BLOCK_BYTES", 70 * 300 * metrics.PR_BYTES_PER_DISTANCE)  # blocks of 70 rows
    assert metrics.pr_block_rows(300) == 70  # several blocks, one of them partial
    got = precision_recall(generated, real)
    assert 0.2 < got["precision"] < 1 and 0.2 < got["recall"] < 1
    assert got == {"precision": reference["precision"], "recall": reference["recall"]}


def test_precision_recall_blocks_hold_a_fixed_memory_whatever_the_number_of_features():
    from eae.evaluation.metrics import PR_BLOCK_BYTES, PR_BYTES_PER_DISTANCE, pr_block_rows

    for n in (10, 2_000, 20_000, 200_000, 5_000_000):
        rows = pr_block_rows(n)
        assert 1 <= rows <= n
        assert rows == 1 or rows * n * PR_BYTES_PER_DISTANCE <= PR_BLOCK_BYTES
    assert pr_block_rows(2_000) == 2_000 and pr_block_rows(20_000) == 671  # one block / bounded blocks
