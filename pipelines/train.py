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
from pathlib import Path

import numpy as np
import torch
from dvclive import Live
from tqdm import tqdm

from eae.data.prepared import read_manifest, read_split, seeded_split, split_shards
from eae.errors import EAEError
from eae.images import image_grid
from eae.io import atomic_dir, write_json
from eae.models.inference import code_statistics, reconstruction_error, reconstruction_mse
from eae.models.networks import ArchConfig
from eae.models.objectives.base import Objective
from eae.models.objectives.registry import build_objective
from eae.training.checkpoint import save_checkpoint
from eae.training.distributed import BatchShard, data_parallel_loss
from eae.training.loop import adam, train_epoch
from eae.training.resume import fingerprint, load_state, restore, save_state
from eae.training.seed import seed_everything
from pipelines._stage import CHECKPOINT, DVCLIVE, PREPARED, TRAIN_METRICS, log, run
from pipelines.config import ConfigError, Params, TrainParams, load_params
from pipelines.launch import LAUNCH_KEYS, broadcast, launch, needs_launcher, record_errors, worker

# Scratch space inside the workspace, ignored by git and DVC; removed when training completes.
RESUME_STATE = ".dvc/tmp/eae/train_state.pt"


def place_data(images: np.ndarray, device: torch.device, max_gb: float) -> tuple[torch.Tensor, bool]:
    """uint8 images on the device when they fit under max_gb, else pinned in CPU memory.
    Returns (tensor, on_device)."""
    data = torch.from_numpy(images)
    if device.type == "cpu" or images.nbytes <= max_gb * 2**30:
        return data.to(device), True
    log.info(
        "dataset (%.1f GB) exceeds train.max_device_data_gb: pinned CPU memory, copied per batch", images.nbytes / 2**30
    )
    return data.pin_memory(), False


@torch.no_grad()
def sample_grid(model: Objective, noise: torch.Tensor) -> np.ndarray:
    """Decode fixed N(0, I) noise (the isotropic sampler) in eval mode; returns a uint8 picture."""
    was_training = model.training
    model.eval()
    images = model.decoder(noise).float().cpu().numpy()
    model.train(was_training)
    return image_grid(images)


def main() -> None:
    p = load_params()
    if needs_launcher(p.train):
        launch(p.train, "pipelines.train")  # the workers run this module again, as torchrun workers
        return
    record_errors(train)(p)


def arch_of(p: Params, manifest: dict) -> ArchConfig:
    """The networks of ``model`` for the prepared images of ``manifest``."""
    return ArchConfig(
        image_shape=tuple(manifest["image_shape"]),
        latent_dim=p.model.latent_dim,
        encoder_channels=tuple(p.model.encoder_channels),
        decoder_channels=tuple(p.model.decoder_channels),
        kernel_size=p.model.kernel_size,
    )


def build_model(p: Params, manifest: dict, device: torch.device, shard: BatchShard) -> Objective:
    """``model.objective`` with its weights, on ``device``, as ``shard``'s part of the global batch."""
    arch = arch_of(p, manifest)
    weights = p.objective_weights()
    model = build_objective(p.model.objective, arch, weights).to(device).distribute(shard)
    if p.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n_params = sum(x.numel() for x in model.parameters()) / 1e6
    log.info("objective %s %s, networks %s: %.2fM parameters", p.model.objective, weights, arch.to_dict(), n_params)
    return model


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


class Recorder:
    """What rank 0 records as training goes: dvclive curves and sample grids, the resume state. On the
    other ranks every method does nothing."""

    def __init__(
        self, p: Params, live: Live | None, key: str, series: tuple[str, ...], noise: torch.Tensor, last_epoch: int
    ):
        self.t, self.live, self.key, self.series, self.noise = p.train, live, key, series, noise
        self.last_epoch = last_epoch  # train.epochs, or the epoch in which train.max_steps ends training

    def replay(self, history: dict[str, list[float]], epochs: int) -> None:
        """The curves of the epochs a resumed run does not repeat."""
        for epoch in range(epochs if self.live else 0):
            for s in self.series:
                self.live.log_metric(f"train/{s}", history[s][epoch])
            self.live.next_step()

    def epoch(self, done: int, stats: dict, model: Objective, history: dict, **state) -> None:
        """After ``done`` epochs: the curves, a sample grid every ``sample_every``, the resume state every
        ``checkpoint_every`` (``state``: optimizer, scheduler, shuffle)."""
        if self.live is None:
            return
        t = self.t
        for s in self.series:
            self.live.log_metric(f"train/{s}", stats[s])
        if t.sample_every and (done % t.sample_every == 0 or done == self.last_epoch):
            self.live.log_image(f"samples/epoch_{done:04d}.png", sample_grid(model, self.noise))
        self.live.next_step()
        if t.checkpoint_every and done % t.checkpoint_every == 0 and done < self.last_epoch:
            save_state(RESUME_STATE, fingerprint=self.key, epoch=done, model=model, history=history, **state)


def train(p: Params) -> None:
    t = p.train
    seed_everything(p.seed, compiled=t.compile)
    with worker(t) as (shard, device):
        lead = shard.rank == 0  # writes every output
        manifest = read_manifest(PREPARED)
        train_images, val_images = training_and_validation(p)
        images, on_device = place_data(train_images, device, t.max_device_data_gb)
        if len(images) < t.batch_size:
            raise ConfigError(f"train.batch_size {t.batch_size} exceeds the {len(images)} training images")
        model = build_model(p, manifest, device, shard)
        series = (*model.series, "lr", *(("val_recon",) if val_images is not None else ()))
        optimizer = adam(model.parameters(), lr=t.lr)
        scheduler = lr_scheduler(t, optimizer)
        shuffle = torch.Generator().manual_seed(p.seed)
        noise = torch.randn(64, model.arch.latent_dim, generator=torch.Generator().manual_seed(p.seed)).to(device)
        key = resume_key(p, model, manifest)

        history: dict[str, list[float]] = {s: [] for s in series}
        first_epoch, best = 0, None
        state = saved_state(p, key, shard)
        if state is not None:
            restore(state, model, optimizer, scheduler, shuffle)
            history, first_epoch, best = state["history"], state["epoch"], state.get("best")
            log.info("resuming from %s after epoch %d", RESUME_STATE, first_epoch)

        cuda_ids = [device.index] if device.type == "cuda" else None
        loss_fn = data_parallel_loss(model, cuda_ids) if shard.distributed else None
        if t.compile:
            loss_fn = torch.compile(loss_fn or model.loss)
        amp = torch.bfloat16 if t.amp == "bf16" else None
        steps = len(images) // t.batch_size
        total = min(t.epochs * steps, t.max_steps or t.epochs * steps)  # optimiser steps of the whole run
        last_epoch = -(-total // steps)  # the epoch in which the last step falls (partial with train.max_steps)
        start = time.perf_counter()
        # dvclive/ (a persistent DVC output) is replaced as a whole only when the run succeeds: a failed or
        # killed run leaves the last good curves (Live() would otherwise reset the folder as it starts).
        with (
            atomic_dir(DVCLIVE) if lead else contextlib.nullcontext() as live_dir,
            Live(str(live_dir), save_dvc_exp=False, dvcyaml=None) if lead else contextlib.nullcontext() as live,
            tqdm(
                total=total,
                initial=first_epoch * steps,
                desc="train",
                unit="step",
                mininterval=2,
                disable=not lead,
            ) as bar,
        ):
            recorder = Recorder(p, live, key, series, noise, last_epoch)
            recorder.replay(history, first_epoch)  # the curves of a resumed run start at epoch 1
            for epoch in range(first_epoch, last_epoch):
                model.start_epoch(epoch)  # every rank: schedules of the objective's weights
                lr = optimizer.param_groups[0]["lr"]
                try:
                    stats = train_epoch(
                        model,
                        optimizer,
                        images,
                        t.batch_size,
                        generator=shuffle,
                        progress=bar,
                        device=None if on_device else device,
                        amp_dtype=amp,
                        channels_last=t.channels_last,
                        loss_fn=loss_fn,
                        shard=shard,
                        max_steps=min(steps, total - epoch * steps),
                    )
                except FloatingPointError as exc:  # NaN weights are never written: no checkpoint, no resume state
                    raise EAEError(
                        f"epoch {epoch + 1}: {exc}; nothing was written (lower train.lr or the objective's weights)"
                    ) from None
                stats["lr"] = lr
                if val_images is not None:  # rank 0's number on every rank: the same lr and selection everywhere
                    stats["val_recon"] = broadcast(reconstruction_error(model, val_images) if lead else None, shard)
                    if t.select == "best_val" and (best is None or stats["val_recon"] < best["val"]):
                        best = {"epoch": epoch + 1, "val": stats["val_recon"], "state": snapshot(model)}
                scheduler.step(*((stats["val_recon"],) if t.lr_schedule == "plateau" else ()))
                for s in series:
                    history[s].append(stats[s])
                bar.set_postfix(epoch=epoch + 1, **{s: f"{stats[s]:.3f}" for s in series[1:] if s != "lr"})
                recorder.epoch(
                    epoch + 1,
                    stats,
                    model,
                    history,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    shuffle=shuffle,
                    best=best,
                )
            if best is not None:  # train.select: best_val
                model.load_state_dict(best["state"])
                log.info("selected epoch %d (validation reconstruction %.4f)", best["epoch"], best["val"])
            if lead:  # inside the dvclive swap: the curves change only together with the checkpoint
                write_outputs(
                    p, model, manifest, history, first_epoch, total, time.perf_counter() - start, best, images
                )


def training_and_validation(p: Params) -> tuple[np.ndarray, np.ndarray | None]:
    """The prepared training split, less ``train.val_fraction`` of it held out for validation (a seeded
    split by ``data.split_seed``, fixed when the training seed varies)."""
    images = read_split(PREPARED, "train").images
    if not p.train.val_fraction:
        return images, None
    fit, held_out = seeded_split(len(images), p.train.val_fraction, p.data.split_seed)
    log.info("validation: %d of the %d training images held out", len(held_out), len(images))
    return images[fit], torch.from_numpy(images[held_out])


def lr_scheduler(t: TrainParams, optimizer: torch.optim.Optimizer):
    """ExponentialLR(lr_decay), or ReduceLROnPlateau on the validation reconstruction."""
    if t.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=t.lr_plateau_factor, patience=t.lr_plateau_patience
        )
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=t.lr_decay)


def snapshot(model: Objective) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
