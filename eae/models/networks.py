"""The encoder and decoder networks every objective shares (``eae.models.objectives``).

Architecture of the paper (§5.1, following Ghosh et al. 2019): every conv and
deconv has stride 2 followed by BatchNorm and ReLU; the encoder ends with a linear
map to the code; the decoder starts with a linear map to an s x s x C0 feature map
and ends with a stride-1 conv to the image channels and a sigmoid. What happens
between the two (the EAE's BatchNorm code layer, a VAE's sampling step) belongs to
the objective.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from eae.errors import EAEError


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild the networks (stored in checkpoints).

    encoder_channels: output channels of each stride-2 conv (paper: 128-256-512-1024).
    decoder_channels: C0 of the linear map's feature map, then the output channels
        of each stride-2 deconv (paper: 1024-512-256 for CIFAR/MNIST, 1024-512-256-128 for CelebA).
    spectral_norm: spectrally normalise the decoder's linear and conv layers (set by the
        objective: RAE-SN always, the EAE on CelebA in the paper).
    code_batchnorm: the EAE's ``BatchNorm1d(affine=False)`` on the code (``eae.models.objectives.eae``);
        False only for the ablation "the entropy term without the BatchNorm" (the paper's §1). Other
        objectives have no code BatchNorm and need it True. Checkpoints without it load as True.
    """

    image_shape: tuple[int, int, int]
    latent_dim: int
    encoder_channels: tuple[int, ...] = (128, 256, 512, 1024)
    decoder_channels: tuple[int, ...] = (1024, 512, 256)
    kernel_size: int = 4
    spectral_norm: bool = False
    code_batchnorm: bool = True

    def __post_init__(self) -> None:
        c, h, w = self.image_shape
        if h != w:
            raise EAEError(f"images must be square, got {h}x{w}")
        if not self.encoder_channels or not self.decoder_channels:
            raise EAEError("encoder_channels and decoder_channels must be non-empty")
        for name, n in (("encoder", len(self.encoder_channels)), ("decoder", len(self.decoder_channels) - 1)):
            if h % (2**n):
                raise EAEError(f"image size {h} is not divisible by 2^{n} ({name} stride-2 layers)")
        if self.kernel_size < 2:
            raise EAEError(f"kernel_size must be >= 2, got {self.kernel_size}")

    @property
    def decoder_start(self) -> int:
        return self.image_shape[1] // 2 ** (len(self.decoder_channels) - 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ArchConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _padding(k: int) -> int:
    return (k - 1) // 2


class Encoder(nn.Module):
    """Stride-2 convs (BN, ReLU) -> flatten -> linear to ``out_features`` (default: the latent size;
    a VAE asks for 2 x latent_dim: means and log-variances). ``bias=False`` when a BatchNorm follows
    the linear layer (the EAE's code): its subtraction of the batch mean makes a bias a parameter
    without a gradient, which Adam would still move by ~lr per step on float noise."""

    def __init__(self, arch: ArchConfig, out_features: int | None = None, bias: bool = True):
        super().__init__()
        c, h, _ = arch.image_shape
        layers: list[nn.Module] = []
        for out in arch.encoder_channels:
            layers += [
                nn.Conv2d(c, out, arch.kernel_size, stride=2, padding=_padding(arch.kernel_size), bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            c, h = out, h // 2
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * h * h, out_features or arch.latent_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class Decoder(nn.Module):
    def __init__(self, arch: ArchConfig):
        super().__init__()
        self.arch = arch
        k, p = arch.kernel_size, _padding(arch.kernel_size)
        c0, s = arch.decoder_channels[0], arch.decoder_start
        self.start_shape = (c0, s, s)
        self.fc = nn.Linear(arch.latent_dim, c0 * s * s)
        layers: list[nn.Module] = [nn.Unflatten(1, self.start_shape), nn.BatchNorm2d(c0), nn.ReLU(inplace=True)]
        c = c0
        for out in arch.decoder_channels[1:]:
            # output_padding makes every kernel size exactly double the spatial size.
            layers += [
                nn.ConvTranspose2d(c, out, k, stride=2, padding=p, output_padding=2 + 2 * p - k, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            c = out
        # Stride-1 "same" conv to the image channels; TensorFlow-style padding (the extra
        # row/column of an even kernel goes right/bottom), as in the RAE reference code.
        lo, hi = (k - 1) // 2, k // 2
        layers += [nn.ZeroPad2d((lo, hi, lo, hi)), nn.Conv2d(c, arch.image_shape[0], k), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        if arch.spectral_norm:
            for m in [self.fc, *self.net]:
                if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    nn.utils.parametrizations.spectral_norm(m)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z))

    @torch.no_grad()
    def baked(self) -> Decoder:
        """A plain copy (eval mode) whose weights are the current spectral-normalised ones:
        what inference and export use, without parametrizations."""
        from dataclasses import replace

        from torch.nn.utils import parametrize

        was_training = self.training
        self.eval()
        state = {k: v for k, v in self.state_dict().items() if ".parametrizations." not in k}
        for name, m in self.named_modules():
            if parametrize.is_parametrized(m):
                for tensor_name in m.parametrizations.keys():
                    state[f"{name}.{tensor_name}"] = getattr(m, tensor_name).detach().clone()
        self.train(was_training)
        ref = next(v for v in state.values() if v.is_floating_point())
        plain = Decoder(replace(self.arch, spectral_norm=False)).to(device=ref.device, dtype=ref.dtype)
        plain.load_state_dict(state)
        return plain.eval()

    def weight_l2(self) -> torch.Tensor:
        """Sum of squared weights of the linear/conv layers (the paper's L2 on the decoder)."""
        terms = [
            m.weight.pow(2).sum()
            for m in [self.fc, *self.net]
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))
        ]
        return torch.stack(terms).sum()
