import pytest
import torch

from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.models.objectives.wae import IMQ_SCALES, mmd_imq

SMALL = ArchConfig(image_shape=(1, 8, 8), latent_dim=3, encoder_channels=(8, 16), decoder_channels=(16, 8))


def direct_mmd(x, y):
    """The unbiased MMD² with the multi-scale IMQ kernel, as a plain double sum."""
    n, d = x.shape
    m = len(y)
    total = 0.0
    for s in IMQ_SCALES:
        c = 2.0 * d * s

        def k(a, b, c=c):
            return c / (c + float(((a - b) ** 2).sum()))

        kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
        total += kxx + kyy - 2 * kxy
    return total


def test_mmd_matches_a_direct_double_sum():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.5
    assert float(mmd_imq(x, y)) == pytest.approx(direct_mmd(x, y), rel=1e-10)


def test_mmd_is_near_zero_for_the_same_law_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g)
    assert abs(float(mmd_imq(a, b))) < 0.01
    assert float(mmd_imq(a, b + 1.0)) > 0.1


def test_wae_loss_adds_the_weighted_mmd():
    torch.manual_seed(0)
    model = build_objective("wae", SMALL, {"mmd_weight": 3.0})
    loss, stats = model.loss(torch.rand(20, 1, 8, 8))
    torch.testing.assert_close(loss.detach(), stats["recon"] + 3.0 * stats["mmd"])
