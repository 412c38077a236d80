"""What the lead process records as training goes: curves and sample grids (to a dvclive-like logger),
and the resume state (``eae.training.resume``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eae.images import image_grid
from eae.models.objectives.base import Objective
from eae.training.resume import save_state


@torch.no_grad()
def sample_grid(model: Objective, noise: torch.Tensor) -> np.ndarray:
    """Decode fixed N(0, I) noise (the isotropic sampler) in eval mode; returns a uint8 picture."""
    was_training = model.training
    model.eval()
    images = model.decoder(noise).float().cpu().numpy()
    model.train(was_training)
    return image_grid(images)


class Recorder:
    """Curves, sample grids and the resume state of one run. ``live``: a logger with dvclive's
    ``log_metric``, ``log_image`` and ``next_step`` (None on processes that record nothing: then every
    method does nothing). ``last_epoch``: the epoch in which training ends (it always gets a grid, and
    no resume state)."""

    def __init__(
        self,
        live,
        series: tuple[str, ...],
        noise: torch.Tensor,
        last_epoch: int,
        *,
        sample_every: int,
        checkpoint_every: int,
        state_path: str | Path,
        fingerprint: str,
    ):
        self.live, self.series, self.noise, self.last_epoch = live, series, noise, last_epoch
        self.sample_every, self.checkpoint_every = sample_every, checkpoint_every
        self.state_path, self.fingerprint = state_path, fingerprint

    def replay(self, history: dict[str, list[float]], epochs: int) -> None:
        """The curves of the epochs a resumed run does not repeat."""
        for epoch in range(epochs if self.live else 0):
            for s in self.series:
                self.live.log_metric(f"train/{s}", history[s][epoch])
            self.live.next_step()

    def epoch(self, done: int, stats: dict, model: Objective, history: dict, **state) -> None:
        """After ``done`` epochs: the curves, a sample grid every ``sample_every``, the resume state every
        ``checkpoint_every`` (``state``: ``eae.training.resume.save_state``'s optimizer, scheduler,
        shuffle, best)."""
        if self.live is None:
            return
        for s in self.series:
            self.live.log_metric(f"train/{s}", stats[s])
        if self.sample_every and (done % self.sample_every == 0 or done == self.last_epoch):
            self.live.log_image(f"samples/epoch_{done:04d}.png", sample_grid(model, self.noise))
        self.live.next_step()
        if self.checkpoint_every and done % self.checkpoint_every == 0 and done < self.last_epoch:
            save_state(self.state_path, fingerprint=self.fingerprint, epoch=done, model=model, history=history, **state)
