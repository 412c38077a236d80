import math

import pytest
import torch

from eae.models.entropy import gaussian_entropy, kl_entropy, log_unit_ball_volume


def test_unit_ball_volume_known_values():
    assert math.exp(log_unit_ball_volume(1)) == pytest.approx(2.0)
    assert math.exp(log_unit_ball_volume(2)) == pytest.approx(math.pi)
    assert math.exp(log_unit_ball_volume(3)) == pytest.approx(4 / 3 * math.pi)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_standard_normal_entropy_large_n(d):
    torch.manual_seed(0)
    z = torch.randn(4000, d, dtype=torch.float64)
    exact = 0.5 * d * math.log(2 * math.pi * math.e)
    assert float(kl_entropy(z)) == pytest.approx(exact, rel=0.03)


def test_correlated_gaussian_matches_closed_form():
    torch.manual_seed(1)
    cov = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=torch.float64)
    z = torch.randn(4000, 3, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    assert float(kl_entropy(z)) == pytest.approx(float(gaussian_entropy(cov)), rel=0.03)


def test_reference_bias_at_batch_100():
    # ../shared/reference.md: batch 100 overshoots, ~23.6 vs 22.7 at d=16.
    torch.manual_seed(0)
    values = torch.stack([kl_entropy(torch.randn(100, 16, dtype=torch.float64)) for _ in range(200)])
    assert float(values.mean()) == pytest.approx(23.6, abs=0.5)


@pytest.mark.parametrize("a", [0.1, 3.0])
def test_scaling_identity(a):
    torch.manual_seed(2)
    z = torch.randn(300, 5, dtype=torch.float64)
    assert float(kl_entropy(a * z)) == pytest.approx(float(kl_entropy(z)) + 5 * math.log(a), abs=1e-8)


def test_translation_invariance_and_k():
    torch.manual_seed(3)
    z = torch.randn(500, 3, dtype=torch.float64)
    assert float(kl_entropy(z + 7.0)) == pytest.approx(float(kl_entropy(z)), abs=1e-9)
    exact = 1.5 * math.log(2 * math.pi * math.e)
    assert float(kl_entropy(z, k=3)) == pytest.approx(exact, rel=0.06)


def test_duplicates_are_finite_in_value_and_gradient():
    z = torch.randn(50, 4)
    z[10] = z[3]
    z[11] = z[3]
    z = z.clone().requires_grad_(True)
    h = kl_entropy(z)
    h.backward()
    assert torch.isfinite(h)
    assert torch.isfinite(z.grad).all()


def test_gradient_pushes_points_apart():
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [-5.0, 5.0]], requires_grad=True)
    kl_entropy(z).backward()
    # Ascending the entropy moves the two close points away from each other.
    assert z.grad[0, 0] < 0 < z.grad[1, 0]


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        kl_entropy(torch.randn(10))
    with pytest.raises(ValueError):
        kl_entropy(torch.randn(3, 2), k=3)


def test_an_empty_reference_is_the_batch_estimate():
    torch.manual_seed(3)
    z = torch.randn(50, 4, dtype=torch.float64)
    assert torch.equal(kl_entropy(z, reference=torch.empty(0, 4, dtype=torch.float64)), kl_entropy(z))
    assert torch.equal(kl_entropy(z, k=2, reference=None), kl_entropy(z, k=2))


def test_a_reference_pool_removes_most_of_the_batch_bias():
    """N(0, I_16) minibatches of 100: alone they overshoot by ~0.9 nats (../shared/reference.md); with
    1900 more samples of the same law as the estimator's sample the mean is within 0.3 nats."""
    torch.manual_seed(4)
    exact = 0.5 * 16 * math.log(2 * math.pi * math.e)
    alone, pooled = [], []
    for _ in range(40):
        z, ref = torch.randn(100, 16, dtype=torch.float64), torch.randn(1900, 16, dtype=torch.float64)
        alone.append(float(kl_entropy(z)))
        pooled.append(float(kl_entropy(z, reference=ref)))
    assert sum(alone) / 40 - exact > 0.6
    assert abs(sum(pooled) / 40 - exact) < 0.3


def test_the_reference_gets_no_gradient_and_its_points_count_as_neighbours():
    z = torch.tensor([[0.0, 0.0], [10.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[1.0, 0.0], [10.0, 2.0]], requires_grad=True)
    h = kl_entropy(z, reference=ref)
    # neighbours: z0 -> ref0 at distance 1, z1 -> ref1 at distance 2: H = psi(4) - psi(1) + log V_2 + log(1 * 2)
    expected = (1 + 1 / 2 + 1 / 3) + math.log(math.pi) + math.log(2.0)
    assert float(h) == pytest.approx(expected, abs=1e-5)
    h.backward()
    assert ref.grad is None and z.grad is not None
    with pytest.raises(ValueError, match="reference must be"):
        kl_entropy(z, reference=torch.zeros(3, 5))
