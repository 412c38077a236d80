"""Every registered objective, through the same interface: the parametrised contract test."""

import pytest
import torch

from eae.errors import EAEError
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import OBJECTIVES, build_objective
from eae.models.objectives.weights import WEIGHTS as DECLARED
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from eae.training.seed import seed_everything

ARCH = ArchConfig((1, 8, 8), 3, (8, 16), (16, 8))
WEIGHTS = {
    "eae": {"entropy_weight": 0.2},
    "ae": {},
    "ae_l2": {"decoder_l2": 1e-4},
    "rae": {"embedding_weight": 0.05},
    "rae_l2": {"embedding_weight": 0.05, "decoder_l2": 1e-4},
    "rae_gp": {"embedding_weight": 0.05, "gp_weight": 0.01, "gp_probes": 1},
    "rae_sn": {"embedding_weight": 0.05},
    "vae": {"kl_weight": 0.3},
    "cv_vae": {"kl_weight": 0.05, "sigma": 0.7},
    "wae": {"mmd_weight": 1.0},
    "two_stage_vae": {},
}


def blobs(n=100):
    g = torch.Generator().manual_seed(0)
    centre = torch.rand(n, 2, generator=g) * 6 + 1
    grid = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij"))
    return torch.exp(-((grid[None] - centre[:, :, None, None]) ** 2).sum(1, keepdim=True) / 4)


def test_every_objective_has_test_weights():
    assert set(WEIGHTS) == set(OBJECTIVES)


def test_each_objective_validates_with_its_declared_weights_model():
    assert list(OBJECTIVES) == list(DECLARED)
    assert all(OBJECTIVES[name].Weights is DECLARED[name] for name in OBJECTIVES)
    with pytest.raises(
        EAEError, match=r"objective 'rae': embedding_weight: Input should be greater than or equal to 0"
    ):
        build_objective("rae", ARCH, {"embedding_weight": -1.0})
    with pytest.raises(EAEError, match="objective 'eae': entropy_weight must be a finite number"):
        build_objective("eae", ARCH, {"entropy_weight": float("inf")})


def test_weights_given_as_model_mapping_or_keywords_are_the_same():
    from eae.models.objectives.ae import RAE
    from eae.models.objectives.weights import RAEWeights

    a = RAE(ARCH, RAEWeights(embedding_weight=0.5))
    b = RAE(ARCH, {"embedding_weight": 0.5})
    c = RAE(ARCH, embedding_weight=0.5)
    assert a.describe() == b.describe() == c.describe() == {"name": "rae", "weights": {"embedding_weight": 0.5}}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_contract(name, tmp_path):
    seed_everything(0)
    model = build_objective(name, ARCH, WEIGHTS[name])
    assert model.name == name
    x = blobs(50)
    model.train()
    loss, stats = model.loss(x)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert list(stats) == list(model.series)
    assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in stats.values())
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)

    model.eval()
    with torch.no_grad():
        z, x_hat = model(x)
    assert z.shape == (50, ARCH.latent_dim) and x_hat.shape == x.shape
    torch.testing.assert_close(model.encode(x), z)

    save_checkpoint(tmp_path / "m.pt", model, params={}, metrics={})
    back = model_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    assert type(back) is type(model) and back.describe() == model.describe()
    with torch.no_grad():
        torch.testing.assert_close(back(x)[1], x_hat)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_reconstruction_error_falls_within_a_few_steps(name):
    seed_everything(0)
    model = build_objective(name, ARCH, WEIGHTS[name])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = blobs(100)

    def recon_error():
        model.eval()
        with torch.no_grad():
            return float((model(x)[1] - x).pow(2).sum((1, 2, 3)).mean())

    before = recon_error()
    model.train()
    for _ in range(30):
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert recon_error() < 0.8 * before


def test_unknown_objective_and_bad_weights_are_one_line_errors():
    with pytest.raises(EAEError, match="unknown objective 'bogus'; known: eae, ae"):
        build_objective("bogus", ARCH)
    with pytest.raises(EAEError, match="objective 'rae'.*kl_weight"):
        build_objective("rae", ARCH, {"kl_weight": 1.0})
