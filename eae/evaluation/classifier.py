"""A small CNN classifier whose penultimate layer serves as the feature space for the
Fréchet distance on datasets where Inception is meaningless (8x8 digits).

Distances computed in this space are *classifier-feature Fréchet distances*, not
Inception FIDs, and must never be compared with the paper's numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from eae.data.batches import batches, to_float


@dataclass(frozen=True)
class ClassifierConfig:
    image_shape: tuple[int, int, int]
    n_classes: int = 10
    channels: tuple[int, ...] = (16, 32)  # one conv-BN-ReLU-maxpool(2) block each
    feature_dim: int = 32

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class Classifier(nn.Module):
    """(conv-BN-ReLU-pool) per entry of ``channels`` -> global average pool -> linear(feature_dim) -> ReLU ->
    linear(classes)."""

    def __init__(self, arch: ClassifierConfig):
        super().__init__()
        self.arch = arch
        c = arch.image_shape[0]
        layers: list[nn.Module] = []
        for out in arch.channels:
            layers += [
                nn.Conv2d(c, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c = out
        self.body = nn.Sequential(
            *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, arch.feature_dim), nn.ReLU(inplace=True)
        )
        self.head = nn.Linear(arch.feature_dim, arch.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] floats in [0, 1] -> [N, feature_dim] features."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    model: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator | None = None,
    progress=None,
) -> list[float]:
    """Adam + cross-entropy on uint8 images; returns the mean loss of each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        model.train()
        total, steps = 0.0, 0
        order = torch.randperm(len(images), generator=generator).to(images.device)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            x, y = to_float(images[idx]), labels[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
        history.append(total / steps)
        if progress is not None:
            progress.update(1)
    return history


@torch.no_grad()
def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    preds = torch.cat([model(x).argmax(1) for x in batches(images, batch_size, shuffle=False, drop_last=False)])
    return float((preds == labels).float().mean())


FORMAT = "eae-classifier/1"


def save_classifier(path, model: Classifier, metrics: dict) -> None:
    """Self-describing, atomic; loads with torch.load(weights_only=True)."""
    from eae.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(
            {
                "format": FORMAT,
                "arch": model.arch.to_dict(),
                "metrics": metrics,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            },
            tmp,
        )


def load_classifier(path) -> tuple[Classifier, dict]:
    """(model in eval mode on CPU, metrics)."""
    from eae.io import load_payload

    ckpt = load_payload(path, FORMAT, "classifier checkpoint", "classifier")
    model = Classifier(ClassifierConfig.from_dict(ckpt["arch"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["metrics"]
