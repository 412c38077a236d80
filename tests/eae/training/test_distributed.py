"""Exact data parallelism on CPU with gloo: two processes, each with half of a batch, give the loss,
the gradient of every parameter and the updated buffers of one process on the whole batch, for
every objective of the registry (eae.training.distributed)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from eae.models.networks import ArchConfig
from eae.models.objectives.registry import OBJECTIVES, build_objective
from eae.training.distributed import LOCAL, BatchShard, GlobalBatchNorm, data_parallel_loss

ARCH = ArchConfig(image_shape=(1, 8, 8), latent_dim=3, encoder_channels=(4, 8), decoder_channels=(8, 4))
WEIGHTS = {
    "eae": {"entropy_weight": 0.5, "decoder_l2": 0.01, "entropy_queue": 12},  # step 2 pools step 1's codes
    "ae": {},
    "ae_l2": {"decoder_l2": 0.01},
    "rae": {"embedding_weight": 0.1},
    "rae_l2": {"embedding_weight": 0.1, "decoder_l2": 0.01},
    "rae_gp": {"embedding_weight": 0.1, "gp_weight": 0.1, "gp_probes": 2},
    "rae_sn": {"embedding_weight": 0.1},
    "vae": {"kl_weight": 1.0},
    "cv_vae": {"kl_weight": 1.0, "sigma": 0.5},
    "wae": {"mmd_weight": 1.0},
    "two_stage_vae": {},
}
BATCH, STEPS, WORLD = 12, 2, 2
TOLERANCE = 1e-5


def test_every_objective_is_covered():
    assert set(WEIGHTS) == set(OBJECTIVES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data(step: int) -> torch.Tensor:
    return torch.rand(BATCH, *ARCH.image_shape, generator=torch.Generator().manual_seed(100 + step))


def train_steps(name: str, shard: BatchShard, device: str = "cpu") -> list[dict]:
    """STEPS SGD steps of objective ``name`` on this shard's rows of fixed global batches; per step:
    the global loss and statistics, every parameter's gradient and, after the step, every buffer.

    SGD, not Adam: Adam divides each gradient by its own running scale, so the float noise that
    stands for an exactly-zero gradient component (the per-channel mean of the decoder's first bias,
    which its BatchNorm2d subtracts) becomes a step of size ~lr in a direction that differs between
    any two summation orders; that is Adam's doing, not the data parallelism's."""
    torch.manual_seed(0)
    model = build_objective(name, ARCH, WEIGHTS[name]).to(device).distribute(shard)
    cuda = torch.device(device).type == "cuda"
    loss_fn = (
        data_parallel_loss(model, [torch.device(device).index or 0] if cuda else None)
        if shard.distributed
        else model.loss
    )
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    out = []
    for step in range(STEPS):
        torch.manual_seed(10 + step)  # the noise of the stochastic objectives
        x = data(step)[shard.rows(BATCH)].to(device)
        loss, stats = loss_fn(x)
        opt.zero_grad()
        loss.backward()
        grads = {k: p.grad.detach().cpu().clone() for k, p in model.named_parameters()}
        opt.step()
        keys = ["loss", *stats]
        values = shard.mean(torch.stack([loss.detach(), *stats.values()]))
        out.append(
            {
                "stats": dict(zip(keys, values.tolist())),
                "grads": grads,
                "buffers": {k: b.cpu().clone() for k, b in model.named_buffers()},
            }
        )
    return out


def rank_main(rank: int, port: int, path: str, backend: str = "gloo", device: str = "cpu") -> None:
    torch.set_num_threads(1)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        shard = BatchShard.from_process_group()
        results = {name: train_steps(name, shard, device) for name in OBJECTIVES}
        if rank == 0:
            torch.save(results, path)
    finally:
        dist.destroy_process_group()


def relative(a: torch.Tensor, b: torch.Tensor, scale: float) -> float:
    """||a - b|| / ||b||, or / ``scale`` when ||b|| < 1e-5 scale: a gradient that vanishes in exact
    arithmetic (the bias of a layer followed by BatchNorm: about 1e-8 of the largest) is float
    noise, compared with the scale of the whole gradient."""
    norm = float(b.norm())
    return float((a - b).norm()) / (norm if norm >= 1e-5 * scale else scale)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ddp") / "ranks.pt")
    mp.start_processes(rank_main, args=(free_port(), path), nprocs=WORLD, join=True, start_method="spawn")
    return torch.load(path, weights_only=True)


def worst_differences(single: list[dict], ranks: list[dict]) -> dict[str, float]:
    """Largest relative differences of the statistics, gradients and buffers of two runs, asserting
    each is within TOLERANCE."""
    worst = {"loss": 0.0, "grad": 0.0, "buffer": 0.0}
    for step, (ref, got) in enumerate(zip(single, ranks)):
        for key, value in ref["stats"].items():
            err = abs(got["stats"][key] - value) / max(abs(value), 1e-6)
            worst["loss"] = max(worst["loss"], err)
            assert err <= TOLERANCE, (step, key, got["stats"][key], value)
        scale = max(float(g.norm()) for g in ref["grads"].values())
        for key, g in ref["grads"].items():
            err = relative(got["grads"][key], g, scale)
            worst["grad"] = max(worst["grad"], err)
            assert err <= TOLERANCE, (step, key, err)
        for key, b in ref["buffers"].items():
            err = relative(got["buffers"][key].double(), b.double(), 1.0)
            worst["buffer"] = max(worst["buffer"], err)
            assert err <= TOLERANCE, (step, key, err)
    return worst


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_two_ranks_equal_one_process_on_the_whole_batch(two_processes, name):
    worst = worst_differences(train_steps(name, LOCAL), two_processes[name])
    print(f"{name}: max relative difference {worst}")


def test_gathered_batchnorm_matches_batchnorm_in_one_process():
    """Without a group, GlobalBatchNorm is plain BatchNorm (what single-process checkpoints hold)."""
    bn, sync = torch.nn.BatchNorm2d(3), GlobalBatchNorm(3)
    x = torch.randn(6, 3, 4, 4)
    torch.testing.assert_close(sync(x), bn(x))
    torch.testing.assert_close(sync.running_var, bn.running_var)
    assert set(sync.state_dict()) == set(bn.state_dict())


def test_rows_split_a_batch_evenly():
    assert BatchShard(1, 4).rows(12) == slice(3, 6)
    with pytest.raises(ValueError, match="does not split evenly"):
        BatchShard(0, 4).rows(10)
    with pytest.raises(ValueError, match="rank 2"):
        BatchShard(2, 2)


def test_local_noise_is_the_plain_draw():
    x = torch.zeros(5, 3)
    torch.manual_seed(1)
    a = LOCAL.randn_like(x)
    torch.manual_seed(1)
    torch.testing.assert_close(a, torch.randn_like(x), rtol=0, atol=0)
