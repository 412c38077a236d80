"""The typed mirror of params.yaml (pydantic-settings).

Values come from params.yaml, overridden by environment variables with the
prefix ``EAE_`` and ``__`` for nesting (``EAE_TRAIN__EPOCHS=1``,
``EAE_ENTROPY_WEIGHT=0.5``). Environment overrides are for quick local runs:
DVC does not see them, so runs that should be tracked change params.yaml
(or use ``dvc exp run -S key=value``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from eae.errors import EAEError

PARAMS_FILE = "params.yaml"


class ConfigError(EAEError):
    """Bad parameters: reported on one line, exit code 2."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataParams(_Section):
    source: Literal["digits", "celeba", "cifar10", "mnist", "folder"] = "digits"
    root: str = "data/raw"
    download: bool = Field(False, description="celeba/cifar10/mnist: fetch missing files with torchvision")
    image_size: int = Field(16, ge=4)
    crop: Literal["none", "center"] = Field("center", description="folder: centre square crop before resizing")
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split_file: str | None = Field(None, description="folder: lines '<relative/path> <split>'")
    shard_size: int = Field(100_000, ge=1)
    workers: int = Field(0, ge=0, description="processes decoding image files (celeba, folder); 0 = serial")
    on_bad_image: Literal["skip", "fail"] = "skip"


class ModelParams(_Section):
    latent_dim: int = Field(8, ge=1)
    encoder_channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    decoder_channels: list[int] = Field(default_factory=lambda: [128, 64, 32], min_length=1)
    kernel_size: int = Field(4, ge=2)
    spectral_norm: bool = False

    @field_validator("encoder_channels", "decoder_channels")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(c < 1 for c in v):
            raise ValueError("channel counts must be >= 1")
        return v


class TrainParams(_Section):
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(100, ge=2)
    lr: float = Field(1e-3, gt=0)
    lr_decay: float = Field(1.0, gt=0, le=1, description="ExponentialLR gamma per epoch; 1 = no decay")
    decoder_l2: float = Field(0.0, ge=0)
    entropy_k: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(1, ge=0, description="epochs between resume states; 0 = never")
    sample_every: int = Field(10, ge=0, description="epochs between sample grids logged with dvclive; 0 = never")
    max_device_data_gb: float = Field(4.0, ge=0, description="keep the uint8 dataset on the GPU up to this size")
    amp: Literal["none", "bf16"] = "none"
    channels_last: bool = False
    compile: bool = False


class DensityParams(_Section):
    gmm_components: int = Field(10, ge=1)
    gmm_max_iter: int = Field(200, ge=1)
    reg_covar: float = Field(1e-6, ge=0)


class ExportParams(_Section):
    sampler: Literal["isotropic", "mvg", "gmm"] = "gmm"
    opset: int = Field(18, ge=13)
    tolerance: float = Field(1e-4, gt=0)


class ClassifierParams(_Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    feature_dim: int = Field(32, ge=2)


class EvalParams(_Section):
    n_samples: int = Field(10_000, ge=2)
    batch_size: int = Field(1000, ge=1)
    feature_extractor: Literal["classifier", "inception"] = "classifier"
    inception_dims: Literal[64, 192, 768, 2048] = 2048
    inception_weights: str | None = Field(None, description="pt_inception-2015-12-05-6726825d.pth; "
                                                             "default: the torch hub cache")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ReportParams(_Section):
    n_images: int = Field(64, ge=1, le=1024)


class Params(BaseSettings):
    """Mirror of params.yaml. Field order follows the file."""

    model_config = SettingsConfigDict(env_prefix="EAE_", env_nested_delimiter="__", extra="forbid")

    seed: int = Field(0, ge=0)
    entropy_weight: float = Field(0.2, ge=0, description="beta in loss = recon - beta * H(z)")
    data: DataParams = Field(default_factory=DataParams)
    model: ModelParams = Field(default_factory=ModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    density: DensityParams = Field(default_factory=DensityParams)
    export: ExportParams = Field(default_factory=ExportParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)
    eval: EvalParams = Field(default_factory=EvalParams)
    report: ReportParams = Field(default_factory=ReportParams)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        # Environment first: it overrides the values read from params.yaml (passed as init kwargs).
        return env_settings, init_settings


def _describe(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "<root>"
    env = "EAE_" + "__".join(str(p) for p in error["loc"]).upper()
    origin = f" [from environment variable {env}]" if env in os.environ else ""
    if error["type"] == "extra_forbidden":
        return f"unknown parameter '{key}'{origin}"
    return f"invalid parameter '{key}': {error['msg']} (got {error.get('input')!r}){origin}"


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml (+ EAE_ environment overrides); ConfigError on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"missing parameter file {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters, got {type(raw).__name__}")
    try:
        return Params(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from None
