import pytest
import torch

from eae.models.inference import code_statistics, encode, posterior, reconstruct, reconstruction_mse
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
    parts = (x[:100], x[100:200], x[200:])  # a split's shards, streamed
    assert reconstruction_mse(model, iter(parts), batch_size=64) == pytest.approx(whole, rel=1e-12)


def test_code_statistics_streamed_are_those_of_all_codes_at_once():
    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})
    x = images(230)
    codes = encode(model, x).double()
    for got in (code_statistics(model, x, batch_size=64), code_statistics(model, iter((x[:37], x[37:])), 50)):
        assert got["n"] == 230
        torch.testing.assert_close(torch.tensor(got["mean"], dtype=torch.float64), codes.mean(0), rtol=0, atol=1e-12)
        torch.testing.assert_close(
            torch.tensor(got["std"], dtype=torch.float64), codes.std(0, correction=0), rtol=1e-10, atol=1e-12
        )
    with pytest.raises(ValueError, match="no images"):
        code_statistics(model, iter(()))
