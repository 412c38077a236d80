"""The feature classifier's architecture follows ``channels``: one conv-BN-ReLU-maxpool(2) block each."""

import torch
from torch import nn

from eae.evaluation.classifier import Classifier, ClassifierConfig


def conv_map_shape(model: Classifier, x: torch.Tensor) -> tuple[int, ...]:
    """Shape of the feature map that the global average pool averages."""
    pool = next(i for i, m in enumerate(model.body) if isinstance(m, nn.AdaptiveAvgPool2d))
    return tuple(model.body[:pool](x).shape)


def test_three_blocks_pool_32_px_to_4x4_as_two_blocks_pool_16_px():
    digits = Classifier(ClassifierConfig((1, 16, 16)))  # the default (16, 32)
    npm = Classifier(ClassifierConfig((1, 32, 32), channels=(16, 32, 64)))
    assert conv_map_shape(digits, torch.zeros(2, 1, 16, 16)) == (2, 32, 4, 4)
    assert conv_map_shape(npm, torch.zeros(2, 1, 32, 32)) == (2, 64, 4, 4)
    assert sum(isinstance(m, nn.Conv2d) for m in npm.body) == 3
    assert npm.features(torch.zeros(2, 1, 32, 32)).shape == (2, 32) and npm(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_config_round_trips_with_any_number_of_blocks():
    arch = ClassifierConfig((1, 32, 32), channels=(16, 32, 64))
    assert arch.to_dict()["channels"] == [16, 32, 64]
    assert ClassifierConfig.from_dict(arch.to_dict()) == arch
