"""The learning-rate schedules a training run steps once per epoch."""

from __future__ import annotations

import torch

SCHEDULES = ("exponential", "plateau")


def lr_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str = "exponential",
    *,
    decay: float = 1.0,
    plateau_factor: float = 0.5,
    plateau_patience: int = 5,
):
    """``exponential``: ExponentialLR (lr x ``decay`` every epoch); ``plateau``: ReduceLROnPlateau on a
    validation loss (lr x ``plateau_factor`` after ``plateau_patience`` epochs without a lower one)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r} (one of {', '.join(SCHEDULES)})")
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=plateau_factor, patience=plateau_patience
        )
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)


def step_scheduler(scheduler, validation_loss: float | None = None) -> None:
    """The end-of-epoch step: a plateau schedule steps on ``validation_loss``, the others on the epoch."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(validation_loss)
    else:
        scheduler.step()
