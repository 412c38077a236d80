"""Stage train: data/prepared -> models/eae.pt, reports/train_metrics.json, dvclive/ curves and samples.

Trains ``model.objective`` (``eae.models.objectives``; the EAE by default) with its weights from
``objectives.<name>`` (the EAE's entropy weight: the top-level ``entropy_weight``).

An interrupted run resumes from its last saved state (``train.checkpoint_every``) when
restarted with the same parameters and data; on CPU it ends with the same weights as an
uninterrupted run.

With ``train.nproc_per_node`` x ``train.nnodes`` > 1 the stage launches torchrun and trains
data-parallel (``pipelines.launch``): every rank keeps the uint8 training set (on its GPU when it
fits ``train.max_device_data_gb``) and takes its rows of every global batch of
``train.batch_size``; the numbers equal one process's (``eae.training.distributed``). Rank 0 writes the
checkpoint, the metrics, dvclive/ and the resume state.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from dvclive import Live
from tqdm import tqdm

from eae.data.prepared import read_manifest, read_split, seeded_split, split_shards
from eae.errors import EAEError
from eae.io import atomic_dir, write_json
from eae.models.inference import code_statistics, reconstruction_error, reconstruction_mse
from eae.models.objectives.base import Objective
from eae.models.objectives.registry import build_objective
from eae.training.checkpoint import save_checkpoint
from eae.training.distributed import BatchShard, data_parallel_loss
from eae.training.loop import adam, train_epoch
from eae.training.recorder import Recorder
from eae.training.resume import fingerprint, load_state, restore
from eae.training.schedule import lr_scheduler, step_scheduler
from eae.training.seed import seed_everything
from eae.training.setup import arch_for, place_images, weights_copy
from pipelines._stage import CHECKPOINT, DVCLIVE, PREPARED, TRAIN_METRICS, log, run
from pipelines.config import ConfigError, Params, load_params
from pipelines.launch import LAUNCH_KEYS, broadcast, launch, needs_launcher, record_errors, worker

# Scratch space inside the workspace, ignored by git and DVC; removed when training completes.
RESUME_STATE = ".dvc/tmp/eae/train_state.pt"


@dataclass
class Data:
    """The training images (uint8; on the device, or pinned on the CPU when ``on_device`` is False) and
    the held-out validation images (None without ``train.val_fraction``)."""

    images: torch.Tensor
    on_device: bool
    val: torch.Tensor | None


@dataclass
class Run:
    """One run's model, optimiser state and progress (as resumed, then after each epoch)."""

    model: Objective
    optimizer: torch.optim.Optimizer
    scheduler: object
    shuffle: torch.Generator  # the order of the training images, epoch after epoch
    series: tuple[str, ...]  # the curves: the objective's statistics, lr, val_recon
    key: str  # resume_key
    history: dict[str, list[float]]
    first_epoch: int = 0
    best: dict | None = None  # train.select: best_val: {"epoch", "val", "state"} of the best epoch so far


@dataclass
class Plan:
    steps: int  # optimiser steps of a whole epoch
    total: int  # optimiser steps of the whole run
    last_epoch: int  # the epoch in which the last step falls (partial with train.max_steps)


def main() -> None:
    p = load_params()
    if needs_launcher(p.train):
        launch(p.train, "pipelines.train")  # the workers run this module again, as torchrun workers
        return
    record_errors(train)(p)


def train(p: Params) -> None:
    seed_everything(p.seed, compiled=p.train.compile)
    with worker(p.train) as (shard, device):
        lead = shard.rank == 0  # writes every output
        manifest = read_manifest(PREPARED)
        data = load_data(p, device)
        model = build_model(p, manifest, device, shard)
        run = start_run(p, model, manifest, data, shard)
        loss_fn = loss_function(p, model, shard, device)
        plan = plan_of(p, data)
        start = time.perf_counter()
        with curves(lead) as live, progress_bar(plan, run, lead) as bar:
            recorder = recorder_of(p, run, plan, live, device)
            recorder.replay(run.history, run.first_epoch)  # the curves of a resumed run start at epoch 1
            for epoch in range(run.first_epoch, plan.last_epoch):
                stats = train_one_epoch(p, run, data, epoch, plan, loss_fn, shard, device, bar)
                state = {"optimizer": run.optimizer, "scheduler": run.scheduler, "shuffle": run.shuffle}
                recorder.epoch(epoch + 1, stats, model, run.history, **state, best=run.best)
            select_best(model, run.best)
            if lead:  # inside the dvclive swap: the curves change only together with the checkpoint
                seconds = time.perf_counter() - start
                write_outputs(
                    p, model, manifest, run.history, run.first_epoch, plan.total, seconds, run.best, data.images
                )


def load_data(p: Params, device: torch.device) -> Data:
    """The training split on the training device (when it fits ``train.max_device_data_gb``) and the
    validation images."""
    train_images, val_images = training_and_validation(p)
    images, on_device = place_images(train_images, device, p.train.max_device_data_gb * 2**30)
    if not on_device:
        log.info(
            "dataset (%.1f GB) exceeds train.max_device_data_gb: pinned CPU memory, copied per batch",
            train_images.nbytes / 2**30,
        )
    if len(images) < p.train.batch_size:
        raise ConfigError(f"train.batch_size {p.train.batch_size} exceeds the {len(images)} training images")
    return Data(images, on_device, val_images)


def training_and_validation(p: Params) -> tuple[np.ndarray, torch.Tensor | None]:
    """The prepared training split, less ``train.val_fraction`` of it held out for validation (a seeded
    split by ``data.split_seed``, fixed when the training seed varies)."""
    images = read_split(PREPARED, "train").images
    if not p.train.val_fraction:
        return images, None
    fit, held_out = seeded_split(len(images), p.train.val_fraction, p.data.split_seed)
    log.info("validation: %d of the %d training images held out", len(held_out), len(images))
    return images[fit], torch.from_numpy(images[held_out])


def build_model(p: Params, manifest: dict, device: torch.device, shard: BatchShard) -> Objective:
    """``model.objective`` with its weights, on ``device``, as ``shard``'s part of the global batch."""
    arch = arch_for(manifest, **p.model.model_dump(exclude={"objective"}))
    weights = p.objective_weights()
    model = build_objective(p.model.objective, arch, weights).to(device).distribute(shard)
    if p.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n_params = sum(x.numel() for x in model.parameters()) / 1e6
    log.info("objective %s %s, networks %s: %.2fM parameters", p.model.objective, weights, arch.to_dict(), n_params)
    return model


def start_run(p: Params, model: Objective, manifest: dict, data: Data, shard: BatchShard) -> Run:
    """The optimiser, the learning-rate schedule and the shuffling generator, resumed from the saved
    state when there is one for these parameters and data."""
    t = p.train
    series = (*model.series, "lr", *(("val_recon",) if data.val is not None else ()))
    optimizer = adam(model.parameters(), lr=t.lr)
    scheduler = lr_scheduler(
        optimizer,
        t.lr_schedule,
        decay=t.lr_decay,
        plateau_factor=t.lr_plateau_factor,
        plateau_patience=t.lr_plateau_patience,
    )
    shuffle = torch.Generator().manual_seed(p.seed)
    key = resume_key(p, model, manifest)
    run = Run(model, optimizer, scheduler, shuffle, series, key, {s: [] for s in series})
    state = saved_state(p, key, shard)
    if state is not None:
        restore(state, model, optimizer, scheduler, shuffle)
        run.history, run.first_epoch, run.best = state["history"], state["epoch"], state.get("best")
        log.info("resuming from %s after epoch %d", RESUME_STATE, run.first_epoch)
    return run


def resume_key(p: Params, model: Objective, manifest: dict) -> str:
    """Everything but the epoch count, the device and the process layout must match for a saved state to
    be resumed (the process layout does not change the numbers: eae.training.distributed)."""
    t = p.train
    return fingerprint(
        {
            "seed": p.seed,
            "objective": model.describe(),
            "model": p.model.model_dump(),
            "train": t.model_dump(exclude={"epochs", "device", "checkpoint_every", "sample_every", *LAUNCH_KEYS}),
            "data": manifest["content_hash"],
        }
    )


def saved_state(p: Params, key: str, shard: BatchShard) -> dict | None:
    """The resume state every rank continues from (rank 0 reads it: the other machines may not have it)."""
    state = None
    if shard.rank == 0:
        t = p.train
        state, why_not = load_state(RESUME_STATE, key) if t.checkpoint_every else (None, "checkpoint_every is 0")
        if state is not None and state["epoch"] > t.epochs:
            state, why_not = None, f"it is past train.epochs ({state['epoch']} > {t.epochs})"
        if state is None and Path(RESUME_STATE).exists():
            log.info("not resuming from %s: %s", RESUME_STATE, why_not)
    return broadcast(state, shard)


def loss_function(p: Params, model: Objective, shard: BatchShard, device: torch.device):
    """What each step calls instead of ``model.loss`` (None: ``model.loss`` itself): its data-parallel
    wrapper across processes, compiled with ``train.compile``."""
    cuda_ids = [device.index] if device.type == "cuda" else None
    loss_fn = data_parallel_loss(model, cuda_ids) if shard.distributed else None
    if p.train.compile:
        loss_fn = torch.compile(loss_fn or model.loss)
    return loss_fn


def plan_of(p: Params, data: Data) -> Plan:
    t = p.train
    steps = len(data.images) // t.batch_size
    total = min(t.epochs * steps, t.max_steps or t.epochs * steps)
    return Plan(steps, total, last_epoch=-(-total // steps))


@contextlib.contextmanager
def curves(lead: bool):
    """The dvclive logger of the lead process (None on the others). dvclive/ (a persistent DVC output)
    is replaced as a whole only when the run succeeds: a failed or killed run leaves the last good
    curves (Live() would otherwise reset the folder as it starts)."""
    if not lead:
        yield None
        return
    with atomic_dir(DVCLIVE) as live_dir, Live(str(live_dir), save_dvc_exp=False, dvcyaml=None) as live:
        yield live


def recorder_of(p: Params, run: Run, plan: Plan, live: Live | None, device: torch.device) -> Recorder:
    """The curves, the sample grids of fixed noise (seeded by ``seed``) and the resume states of this run."""
    noise = torch.randn(64, run.model.arch.latent_dim, generator=torch.Generator().manual_seed(p.seed)).to(device)
    t = p.train
    return Recorder(
        live,
        run.series,
        noise,
        plan.last_epoch,
        sample_every=t.sample_every,
        checkpoint_every=t.checkpoint_every,
        state_path=RESUME_STATE,
        fingerprint=run.key,
    )


def progress_bar(plan: Plan, run: Run, lead: bool) -> tqdm:
    return tqdm(
        total=plan.total,
        initial=run.first_epoch * plan.steps,
        desc="train",
        unit="step",
        mininterval=2,
        disable=not lead,
    )


def train_one_epoch(
    p: Params, run: Run, data: Data, epoch: int, plan: Plan, loss_fn, shard: BatchShard, device, bar
) -> dict[str, float]:
    """Epoch ``epoch`` (from 0): the optimiser steps, the validation reconstruction, the best epoch
    (``train.select``), the schedule's step; appends the epoch's statistics to the history."""
    t, model = p.train, run.model
    model.start_epoch(epoch)  # every rank: schedules of the objective's weights
    lr = run.optimizer.param_groups[0]["lr"]
    try:
        stats = train_epoch(
            model,
            run.optimizer,
            data.images,
            t.batch_size,
            generator=run.shuffle,
            progress=bar,
            device=None if data.on_device else device,
            amp_dtype=torch.bfloat16 if t.amp == "bf16" else None,
            channels_last=t.channels_last,
            loss_fn=loss_fn,
            shard=shard,
            max_steps=min(plan.steps, plan.total - epoch * plan.steps),
        )
    except FloatingPointError as exc:  # NaN weights are never written: no checkpoint, no resume state
        raise EAEError(
            f"epoch {epoch + 1}: {exc}; nothing was written (lower train.lr or the objective's weights)"
        ) from None
    stats["lr"] = lr
    if data.val is not None:  # rank 0's number on every rank: the same lr and selection everywhere
        stats["val_recon"] = broadcast(reconstruction_error(model, data.val) if shard.rank == 0 else None, shard)
        if t.select == "best_val" and (run.best is None or stats["val_recon"] < run.best["val"]):
            run.best = {"epoch": epoch + 1, "val": stats["val_recon"], "state": weights_copy(model)}
    step_scheduler(run.scheduler, stats.get("val_recon"))
    for s in run.series:
        run.history[s].append(stats[s])
    bar.set_postfix(epoch=epoch + 1, **{s: f"{stats[s]:.3f}" for s in run.series[1:] if s != "lr"})
    return stats


def select_best(model: Objective, best: dict | None) -> None:
    """``train.select: best_val``: the best epoch's weights."""
    if best is not None:
        model.load_state_dict(best["state"])
        log.info("selected epoch %d (validation reconstruction %.4f)", best["epoch"], best["val"])


def write_outputs(
    p: Params,
    model: Objective,
    manifest: dict,
    history: dict,
    first_epoch: int,
    steps: int,
    seconds: float,
    best: dict | None = None,
    train_images: torch.Tensor | None = None,
) -> None:
    """The stage's outputs (rank 0 only): checkpoint (with the training codes' statistics when
    ``train_images`` are given), metrics; the resume state is then obsolete."""
    shape = model.arch.image_shape
    test_mse = reconstruction_mse(model, (torch.from_numpy(s) for s in split_shards(PREPARED, "test")))
    final = {s: history[s][-1] for s in model.series}  # the last epoch's (selected weights: see selected_epoch)
    metrics = {
        **{f"final_{s}": v for s, v in final.items()},
        "train_mse_per_pixel": final["recon"] / (shape[0] * shape[1] * shape[2]),
        "test_mse_per_pixel": test_mse,
        "epochs": p.train.epochs,
        "steps": steps,
        "train_seconds": round(seconds, 2),
        "resumed_from_epoch": first_epoch,
        **({"selected_epoch": best["epoch"], "best_val_recon": best["val"]} if best is not None else {}),
    }
    save_checkpoint(
        CHECKPOINT,
        model,
        params=p.model_dump(),
        metrics={**metrics, "history": history},
        extra={
            "dataset": manifest["source"],
            "data_hash": manifest["content_hash"],
            **({"code_stats": code_statistics(model, train_images)} if train_images is not None else {}),
        },
    )
    write_json(TRAIN_METRICS, metrics)
    Path(RESUME_STATE).unlink(missing_ok=True)
    log.info(
        "wrote %s; test MSE/pixel %.5f, final %s",
        CHECKPOINT,
        test_mse,
        ", ".join(f"{s} {v:.4g}" for s, v in final.items()),
    )


if __name__ == "__main__":
    run(main)
