"""eae.training.schedule, .setup and .recorder: the reusable pieces of the train stage."""

import numpy as np
import pytest
import torch

from eae.training.recorder import Recorder
from eae.training.schedule import lr_scheduler, step_scheduler
from eae.training.setup import arch_for, place_images, weights_copy


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_exponential_and_plateau_schedules():
    opt = optimizer()
    sched = lr_scheduler(opt, "exponential", decay=0.5)
    step_scheduler(sched)
    assert opt.param_groups[0]["lr"] == 0.5
    opt = optimizer()
    sched = lr_scheduler(opt, "plateau", plateau_factor=0.5, plateau_patience=0)
    step_scheduler(sched, 1.0)
    step_scheduler(sched, 1.0)  # no better: the rate halves
    assert opt.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        lr_scheduler(opt, "cosine")


def test_arch_for_and_placement():
    arch = arch_for(
        {"image_shape": [1, 8, 8]}, latent_dim=2, encoder_channels=[4, 8], decoder_channels=[8, 4], kernel_size=4
    )
    assert arch.image_shape == (1, 8, 8) and arch.encoder_channels == (4, 8)
    images = np.zeros((3, 1, 8, 8), np.uint8)
    data, on_device = place_images(images, torch.device("cpu"), max_bytes=0)
    assert on_device and data.dtype == torch.uint8 and data.shape == (3, 1, 8, 8)
    model = torch.nn.Linear(2, 2)
    copy = weights_copy(model)
    with torch.no_grad():
        model.weight.add_(1)
    assert not torch.equal(copy["weight"], model.weight)


def test_recorder_without_a_logger_records_nothing(tmp_path):
    recorder = Recorder(
        None,
        ("loss",),
        torch.zeros(1, 2),
        last_epoch=2,
        sample_every=1,
        checkpoint_every=1,
        state_path=tmp_path / "state.pt",
        fingerprint="k",
    )
    recorder.replay({"loss": [1.0]}, 1)
    recorder.epoch(1, {"loss": 1.0}, None, {"loss": [1.0]})
    assert not (tmp_path / "state.pt").exists()
