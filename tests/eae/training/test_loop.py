import torch

from eae.data.batches import batches
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.training.loop import adam, train_epoch
from eae.training.seed import seed_everything

CFG = ArchConfig((1, 8, 8), 3, (8, 16), (16, 8))


def images(n=200, seed=0):
    """Images on a 2-D manifold: a blob whose position varies."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, generator=g) * 6 + 1
    grid = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij"))
    d2 = ((grid[None] - centre[:, :, None, None]) ** 2).sum(1, keepdim=True)
    return (torch.exp(-d2 / 4) * 255).to(torch.uint8)


def run(seed, epochs=2, beta=0.5, objective="eae", weights=None):
    seed_everything(seed)
    model = build_objective(objective, CFG, weights if weights is not None else {"entropy_weight": beta})
    opt = adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    stats = [train_epoch(model, opt, images(), 50, generator=g) for _ in range(epochs)]
    return model, stats


def test_same_seed_same_numbers_on_cpu():
    m1, s1 = run(0)
    m2, s2 = run(0)
    assert s1 == s2
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    _, s3 = run(1)
    assert s3 != s1


def test_stochastic_objectives_are_reproducible_too():
    _, s1 = run(0, objective="vae", weights={"kl_weight": 1.0})
    _, s2 = run(0, objective="vae", weights={"kl_weight": 1.0})
    assert s1 == s2


def test_training_reduces_reconstruction():
    _, stats = run(0, epochs=15, beta=0.0)
    assert stats[-1]["recon"] < 0.5 * stats[0]["recon"]


def test_entropy_term_raises_the_code_entropy():
    _, with_entropy = run(0, epochs=8, beta=5.0)
    _, without = run(0, epochs=8, beta=0.0)
    assert with_entropy[-1]["entropy"] > without[-1]["entropy"]


def test_stats_are_the_objective_series():
    _, stats = run(0, epochs=1, objective="wae", weights={"mmd_weight": 1.0})
    assert set(stats[0]) == {"loss", "recon", "mmd"}


def test_batches_drop_incomplete_and_scale():
    data = images(105)
    got = list(batches(data, 50, torch.Generator().manual_seed(0)))
    assert [len(b) for b in got] == [50, 50]
    assert got[0].dtype == torch.float32 and float(got[0].max()) <= 1.0
    assert [len(b) for b in batches(data, 50, shuffle=False, drop_last=False)] == [50, 50, 5]


def test_channels_last_trains_to_the_same_weights():
    """The channels_last layout (faster convolutions on CPU) changes only the order of float sums:
    after a few steps every weight matches the default layout's within float tolerance."""

    def steps(channels_last):
        seed_everything(0)
        model = build_objective("ae", CFG)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = adam(model.parameters(), lr=1e-3)
        stats = [
            train_epoch(
                model, opt, images(), 50, generator=torch.Generator().manual_seed(0), channels_last=channels_last
            )
            for _ in range(2)
        ]
        return model, stats

    (ref, ref_stats), (fast, fast_stats) = steps(False), steps(True)
    for (name, a), b in zip(ref.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(b.contiguous(), a, rtol=1e-4, atol=1e-5, msg=name)
    for a, b in zip(ref_stats, fast_stats):
        assert abs(a["recon"] - b["recon"]) <= 1e-4 * abs(a["recon"])


def test_max_steps_stops_the_epoch_after_that_many_steps():
    seed_everything(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.5})
    opt = adam(model.parameters(), lr=1e-3)
    seen = []
    model.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    stats = train_epoch(model, opt, images(), 50, generator=torch.Generator().manual_seed(0), max_steps=3)
    assert len(seen) == 3 and set(stats) == {"loss", "recon", "entropy"}
    assert {int(s["step"]) for s in opt.state.values()} == {3}  # three Adam steps, not the epoch's four


def test_adam_is_fused_on_cpu_and_updates_as_the_per_parameter_loop():
    """The training optimiser is one fused kernel on CPU; the update is Adam's all the same: a few
    steps of both reach the same weights to float rounding."""

    def trained(fused):
        seed_everything(0)
        model = build_objective("ae", CFG)
        opt = adam(model.parameters(), lr=1e-3) if fused else torch.optim.Adam(model.parameters(), lr=1e-3)
        train_epoch(model, opt, images(), 50, generator=torch.Generator().manual_seed(0))
        return model, opt

    (fast, opt), (ref, _) = trained(True), trained(False)
    assert opt.defaults["fused"] is True
    for (name, a), b in zip(ref.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
