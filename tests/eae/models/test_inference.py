import pytest
import torch

from eae.models.inference import encode, posterior, reconstruct, reconstruction_mse
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective

CFG = ArchConfig((1, 8, 8), 3, (8, 16), (16, 8))


class Bar:
    def __init__(self):
        self.n = 0

    def update(self, k):
        self.n += k


def images(n, seed=0):
    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_encode_in_parts_equals_encode_at_once_and_counts_progress():
    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})
    x = images(230)
    bar = Bar()
    parts = torch.cat([encode(model, x[:100], batch_size=50, progress=bar), encode(model, x[100:], 50, bar)])
    assert bar.n == 230 and not model.training
    torch.testing.assert_close(parts, encode(model, x, batch_size=50), rtol=0, atol=1e-6)
    assert reconstruct(model, x[:7]).shape == (7, 1, 8, 8)


def test_posterior_counts_progress():
    torch.manual_seed(0)
    model = build_objective("vae", CFG, {"kl_weight": 1.0})
    bar = Bar()
    mu, logvar = posterior(model, images(120), batch_size=50, progress=bar)
    assert bar.n == 120 and mu.shape == logvar.shape == (120, 3)
    torch.testing.assert_close(mu, encode(model, images(120)))  # a VAE's code is its posterior mean


def test_reconstruction_mse_batch_by_batch_is_the_whole_set_mean():
    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})
    x = images(230)
    whole = float((reconstruct(model, x) - x.float() / 255).double().pow(2).mean())
    assert reconstruction_mse(model, x, batch_size=64) == pytest.approx(whole, rel=1e-6)
    assert reconstruction_mse(model, x, batch_size=64) == reconstruction_mse(model, x, batch_size=64)
