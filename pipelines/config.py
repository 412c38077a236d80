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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from eae.errors import EAEError

PARAMS_FILE = "params.yaml"


class ConfigError(EAEError):
    """Bad parameters: reported on one line, exit code 2."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataParams(_Section):
    source: Literal["digits", "celeba", "cifar10", "mnist", "folder"] = "digits"
    split_seed: int = Field(0, ge=0, description="seeded train/test split (digits, folder); fixed across training seeds")
    root: str = "data/raw"
    download: bool = Field(False, description="celeba/cifar10/mnist: fetch missing files with torchvision")
    image_size: int = Field(16, ge=4)
    crop: Literal["none", "center"] = Field("center", description="folder: centre square crop before resizing")
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split_file: str | None = Field(None, description="folder: lines '<relative/path> <split>'")
    shard_size: int = Field(100_000, ge=1)
    workers: int = Field(0, ge=0, description="processes decoding image files (celeba, folder); 0 = serial")
    on_bad_image: Literal["skip", "fail"] = "skip"


ObjectiveName = Literal["eae", "ae", "ae_l2", "rae", "rae_l2", "rae_gp", "rae_sn", "vae", "cv_vae", "wae",
                        "two_stage_vae"]


class ModelParams(_Section):
    objective: ObjectiveName = Field("eae", description="training objective (eae.objectives); its weights: "
                                                        "objectives.<name>")
    latent_dim: int = Field(8, ge=1)
    encoder_channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    decoder_channels: list[int] = Field(default_factory=lambda: [128, 64, 32], min_length=1)
    kernel_size: int = Field(4, ge=2)

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
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(1, ge=0, description="epochs between resume states; 0 = never")
    sample_every: int = Field(10, ge=0, description="epochs between sample grids logged with dvclive; 0 = never")
    max_device_data_gb: float = Field(4.0, ge=0, description="keep the uint8 dataset on the GPU up to this size")
    amp: Literal["none", "bf16"] = "none"
    channels_last: bool = False
    compile: bool = False
    # Data-parallel training (torchrun DDP, exact: the global batch is train.batch_size). With more
    # than one process in all, the stage launches torchrun itself (pipelines/launch.py).
    nproc_per_node: int = Field(1, ge=1, description="training processes on this machine (one per GPU)")
    nnodes: int = Field(1, ge=1, description="machines training together; each runs the train stage")
    node_rank: int = Field(0, ge=0, description="this machine's rank among nnodes; 0 writes the outputs "
                                                "(set per machine: EAE_TRAIN__NODE_RANK)")
    rdzv_endpoint: str | None = Field(None, pattern=r"^[^\s:]+:[0-9]+$",
                                      description="host:port of node 0, reachable from every node (nnodes > 1)")
    dist_backend: Literal["auto", "nccl", "gloo"] = Field("auto", description="auto: nccl on CUDA, gloo on CPU")
    dist_timeout_s: float = Field(600.0, gt=0, description="a collective waiting longer fails the run")


class EAEWeights(_Section):
    """The EAE's own settings; its entropy weight is the top-level ``entropy_weight``."""
    entropy_k: int = Field(1, ge=1, description="which nearest neighbour the entropy estimate uses")
    decoder_l2: float = Field(0.0, ge=0, description="L2 penalty on the decoder weights (paper: CIFAR-10)")
    spectral_norm: bool = Field(False, description="spectrally normalised decoder (paper: CelebA)")
    entropy_start_weight: float | None = Field(None, ge=0, description="beyond the paper: the entropy weight at "
                                               "epoch 0, ramped linearly to entropy_weight; null = constant")
    entropy_ramp_epochs: int = Field(0, ge=0, description="epochs of that ramp; 0 = no schedule")


class NoWeights(_Section):
    pass


class AEL2Weights(_Section):
    decoder_l2: float = Field(2.56e-5, ge=0)


class RAEWeights(_Section):
    embedding_weight: float = Field(0.032, ge=0, description="weight of ½||z||²")


class RAEL2Weights(_Section):
    embedding_weight: float = Field(0.0064, ge=0)
    decoder_l2: float = Field(2.56e-5, ge=0)


class RAEGPWeights(_Section):
    embedding_weight: float = Field(0.0064, ge=0)
    gp_weight: float = Field(0.01, ge=0, description="weight of the decoder Jacobian's squared Frobenius norm")
    gp_probes: int = Field(1, ge=0, description="Hutchinson probes per image; 0 = exact (one pass per pixel)")


class RAESNWeights(_Section):
    embedding_weight: float = Field(0.576, ge=0)


class VAEWeights(_Section):
    kl_weight: float = Field(0.312, gt=0)


class CVVAEWeights(_Section):
    kl_weight: float = Field(0.039, gt=0)
    sigma: float = Field(0.7, gt=0, description="the fixed posterior standard deviation")


class WAEWeights(_Section):
    mmd_weight: float = Field(0.6, ge=0)


class SecondStageParams(_Section):
    latent_dim: int | None = Field(None, ge=1, description="null = model.latent_dim")
    hidden: int = Field(256, ge=1)
    layers: int = Field(2, ge=1)
    epochs: int = Field(300, ge=1)
    batch_size: int = Field(100, ge=2)
    lr: float = Field(1e-3, gt=0)


class TwoStageWeights(_Section):
    second_stage: SecondStageParams = Field(default_factory=SecondStageParams)


class ObjectivesParams(_Section):
    """Each objective's own weights; ``model.objective`` picks the one that trains."""
    eae: EAEWeights = Field(default_factory=EAEWeights)
    ae: NoWeights = Field(default_factory=NoWeights)
    ae_l2: AEL2Weights = Field(default_factory=AEL2Weights)
    rae: RAEWeights = Field(default_factory=RAEWeights)
    rae_l2: RAEL2Weights = Field(default_factory=RAEL2Weights)
    rae_gp: RAEGPWeights = Field(default_factory=RAEGPWeights)
    rae_sn: RAESNWeights = Field(default_factory=RAESNWeights)
    vae: VAEWeights = Field(default_factory=VAEWeights)
    cv_vae: CVVAEWeights = Field(default_factory=CVVAEWeights)
    wae: WAEWeights = Field(default_factory=WAEWeights)
    two_stage_vae: TwoStageWeights = Field(default_factory=TwoStageWeights)


class DensityParams(_Section):
    gmm_components: int = Field(10, ge=1, description="components (the paper: 10); with gmm_selection, the largest K tried")
    gmm_selection: Literal["fixed", "bic", "heldout"] = Field(
        "fixed", description="fixed: gmm_components; bic / heldout: choose K in 1..gmm_components")
    gmm_max_iter: int = Field(200, ge=1)
    reg_covar: float = Field(1e-6, ge=0)


class ExportParams(_Section):
    sampler: Literal["isotropic", "mvg", "gmm", "two_stage"] = "gmm"
    opset: int = Field(18, ge=13)
    tolerance: float = Field(1e-4, gt=0)


class ClassifierParams(_Section):
    seed: int = Field(0, ge=0, description="the classifier's training seed (fixed across training seeds)")
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
    objectives: ObjectivesParams = Field(default_factory=ObjectivesParams)
    density: DensityParams = Field(default_factory=DensityParams)
    export: ExportParams = Field(default_factory=ExportParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)
    eval: EvalParams = Field(default_factory=EvalParams)
    report: ReportParams = Field(default_factory=ReportParams)

    @model_validator(mode="after")
    def _consistent(self) -> "Params":
        if self.model.objective == "eae" and self.objectives.eae.entropy_k >= self.train.batch_size:
            raise ValueError(f"objectives.eae.entropy_k ({self.objectives.eae.entropy_k}) must be smaller than "
                             f"train.batch_size ({self.train.batch_size}): the k-th neighbour is searched in the batch")
        t = self.train
        if t.batch_size % (t.nproc_per_node * t.nnodes):
            raise ValueError(f"train.batch_size ({t.batch_size}) must be a multiple of the number of training "
                             f"processes, train.nproc_per_node x train.nnodes ({t.nproc_per_node * t.nnodes})")
        if t.node_rank >= t.nnodes:
            raise ValueError(f"train.node_rank ({t.node_rank}) must be smaller than train.nnodes ({t.nnodes})")
        if t.nnodes > 1 and not t.rdzv_endpoint:
            raise ValueError("train.rdzv_endpoint (host:port of node 0) is required when train.nnodes > 1")
        if self.export.sampler == "two_stage" and self.model.objective != "two_stage_vae":
            raise ValueError(f"export.sampler two_stage needs model.objective two_stage_vae "
                             f"(got {self.model.objective})")
        return self

    def objective_weights(self) -> dict:
        """The keyword arguments of ``eae.objectives.build_objective`` for ``model.objective``
        (the EAE's entropy weight is the top-level ``entropy_weight``; the two-stage VAE's second
        stage is fitted by fit_density, not trained with the first)."""
        name = self.model.objective
        weights = getattr(self.objectives, name).model_dump()
        if name == "eae":
            weights["entropy_weight"] = self.entropy_weight
        if name == "two_stage_vae":
            weights.pop("second_stage")
        return weights

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        # Environment first: it overrides the values read from params.yaml (passed as init kwargs).
        return env_settings, init_settings


def _describe(error: dict) -> str:
    if not error["loc"]:  # a check across several keys (model_validator): the message names them
        return error["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in error["loc"])
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
