"""The typed mirror of params.yaml: one strict model per section and ``Params`` (pydantic-settings).

Values come from params.yaml, overridden by environment variables with the prefix ``EAE_`` and
``__`` for nesting (``EAE_TRAIN__EPOCHS=1``, ``EAE_ENTROPY_WEIGHT=0.5``): pydantic-settings' own
``env_prefix`` and ``env_nested_delimiter``. Environment overrides are for quick local runs: DVC does
not see them, so runs that should be tracked change params.yaml (or use ``dvc exp run -S key=value``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from eae.io import human_bytes
from eae.models.objectives.weights import DEFAULT_ENTROPY_WEIGHT, WEIGHTS, EntropyWeight
from eae.sampling import ALL_SAMPLERS, FLOW, GMM_KINDS, WEIGHT_PRIORS
from eae.schema import StrictModel, strict_scalars
from pipelines.config.bounds import (
    MAX_EVAL_SAMPLES,
    MAX_IMAGE_SIZE,
    MAX_OPSET,
    MAX_SEED,
    MAX_TIMEOUT_S,
    MIN_EVAL_SAMPLES,
    MIN_OPSET,
    SOURCE_CHANNELS,
    memory_needs,
    physical_memory,
)

ENV_PREFIX = "EAE_"
ENV_NESTED_DELIMITER = "__"


def _positive_channels(v: list[int]) -> list[int]:
    if any(c < 1 for c in v):
        raise ValueError("channel counts must be >= 1")
    return v


#: Output channels of a stack of layers: at least one layer, each with at least one channel.
Channels = Annotated[list[int], AfterValidator(_positive_channels)]


class DataParams(StrictModel):
    source: Literal[tuple(SOURCE_CHANNELS)] = "digits"  # type: ignore[valid-type]
    split_seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seeded train/test split (digits, folder); fixed across training seeds"
    )
    root: str = "data/raw"
    download: bool = Field(False, description="celeba/cifar10/mnist: fetch missing files with torchvision")
    image_size: int = Field(16, ge=4, le=MAX_IMAGE_SIZE)
    crop: Literal["none", "center"] = Field("center", description="folder: centre square crop before resizing")
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split_file: str | None = Field(None, description="folder: lines '<relative/path> <split>'")
    shard_size: int = Field(100_000, ge=1)
    workers: int = Field(0, ge=0, description="processes decoding image files (celeba, folder); 0 = serial")
    on_bad_image: Literal["skip", "fail"] = "skip"


ObjectiveName = Literal[tuple(WEIGHTS)]  # type: ignore[valid-type]


class ModelParams(StrictModel):
    objective: ObjectiveName = Field(
        "eae", description="training objective (eae.models.objectives); its weights: objectives.<name>"
    )
    latent_dim: int = Field(8, ge=1)
    encoder_channels: Channels = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    decoder_channels: Channels = Field(default_factory=lambda: [128, 64, 32], min_length=1)
    kernel_size: int = Field(4, ge=2)
    code_batchnorm: bool = Field(
        True, description="the EAE's BatchNorm1d on the code; false: the ablation without it (objective eae only)"
    )


class TrainParams(StrictModel):
    epochs: int = Field(60, ge=1)
    max_steps: int = Field(
        0, ge=0, description="stop after this many optimiser steps in all (0 = train.epochs whole epochs)"
    )
    batch_size: int = Field(100, ge=2)
    lr: float = Field(1e-3, gt=0)
    lr_decay: float = Field(1.0, gt=0, le=1, description="ExponentialLR gamma per epoch; 1 = no decay")
    lr_schedule: Literal["exponential", "plateau"] = Field(
        "exponential",
        description="exponential: lr x lr_decay every epoch; plateau: lr x lr_plateau_factor after "
        "lr_plateau_patience epochs without a better validation reconstruction (the RAE protocol; needs val_fraction)",
    )
    lr_plateau_factor: float = Field(0.5, gt=0, lt=1)
    lr_plateau_patience: int = Field(5, ge=0)
    val_fraction: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="share of the training images held out (seeded by "
        "data.split_seed) to score the validation reconstruction each epoch; 0 = none",
    )
    select: Literal["last", "best_val"] = Field(
        "last",
        description="which weights the checkpoint keeps: the last epoch's, or those of the epoch with the "
        "best validation reconstruction (the RAE protocol; needs val_fraction)",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_every: int = Field(1, ge=0, description="epochs between resume states; 0 = never")
    sample_every: int = Field(10, ge=0, description="epochs between sample grids logged with dvclive; 0 = never")
    max_device_data_gb: float = Field(4.0, ge=0, description="keep the uint8 dataset on the GPU up to this size")
    amp: Literal["none", "bf16"] = "none"
    channels_last: bool = True
    compile: bool = False
    # Data-parallel training (torchrun DDP, exact: the global batch is train.batch_size). With more
    # than one process in all, the stage launches torchrun itself (pipelines/launch.py).
    nproc_per_node: int = Field(1, ge=1, description="training processes on this machine (one per GPU)")
    nnodes: int = Field(1, ge=1, description="machines training together; each runs the train stage")
    node_rank: int = Field(
        0,
        ge=0,
        description="this machine's rank among nnodes; 0 writes the outputs (set per machine: EAE_TRAIN__NODE_RANK)",
    )
    rdzv_endpoint: str | None = Field(
        None, pattern=r"^[^\s:]+:[0-9]+$", description="host:port of node 0, reachable from every node (nnodes > 1)"
    )
    dist_backend: Literal["auto", "nccl", "gloo"] = Field("auto", description="auto: nccl on CUDA, gloo on CPU")
    dist_timeout_s: float = Field(
        600.0, gt=0, le=MAX_TIMEOUT_S, description="a collective waiting longer fails the run"
    )


# Each objective's own weights (params.yaml ``objectives.<name>``), as the objectives declare them.
ObjectivesParams = create_model(
    "ObjectivesParams",
    __base__=StrictModel,
    __doc__="Each objective's weights; ``model.objective`` picks the one that trains.",
    **{name: (model, Field(default_factory=model)) for name, model in WEIGHTS.items()},
)


class FlowParams(StrictModel):
    """The learned prior (beyond the paper): a RealNVP flow fitted to the codes (eae.sampling.flow)."""

    enabled: bool = Field(False, description="fit the flow in fit_density and score it as sampler 'flow'")
    base: Literal["gmm", "normal"] = Field(
        "gmm", description="gmm: a mixture fitted like the gmm sampler (its kind and K) | normal: N(0, I)"
    )
    layers: int = Field(6, ge=1, le=64, description="affine coupling layers")
    hidden: int = Field(64, ge=1, le=4096, description="units per hidden layer of each coupling's conditioner")
    depth: int = Field(2, ge=1, le=8, description="hidden layers per conditioner")
    lr: float = Field(1e-3, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, ge=1)
    max_epochs: int = Field(1000, ge=1)
    patience: int = Field(30, ge=1, description="stop after this many epochs without a better held-out likelihood")
    heldout_fraction: float = Field(0.2, gt=0, lt=1, description="share of the training codes held out")


class DensityParams(StrictModel):
    gmm_components: int = Field(
        10, ge=1, description="components (the paper: 10); with gmm_selection, the largest K tried"
    )
    gmm_selection: Literal["fixed", "bic", "heldout"] = Field(
        "fixed", description="fixed: gmm_components; bic / heldout: choose K in 1..gmm_components"
    )
    gmm_kind: Literal[GMM_KINDS] = Field(  # type: ignore[valid-type]
        "bayesian", description="full: maximum likelihood (EM); bayesian: BayesianGaussianMixture, weight prior 1/K"
    )
    gmm_weight_prior: Literal[WEIGHT_PRIORS] = Field(  # type: ignore[valid-type]
        "dirichlet_process", description="gmm_kind bayesian: the weight prior's type (the RAE code: dirichlet_process)"
    )
    gmm_n_init: int = Field(5, ge=1, le=100, description="EM initialisations (seeded k-means), the best kept")
    gmm_max_iter: int = Field(2000, ge=1)
    reg_covar: float = Field(1e-6, ge=0)
    temperature: float = Field(
        1.0, gt=0, le=10, description="beyond the paper: every sampler draws noise ~ N(0, tau^2 I); 1 = off"
    )
    flow: FlowParams = Field(default_factory=FlowParams)


class ExportParams(StrictModel):
    sampler: Literal[ALL_SAMPLERS] = "gmm"  # type: ignore[valid-type]
    opset: int = Field(18, ge=MIN_OPSET, le=MAX_OPSET)
    tolerance: float = Field(1e-4, gt=0)
    # draws in models/test_vectors.json (inputs + expected images for ports): a JSON file that a browser
    # page loads whole, so the count stays small
    test_vectors: int = Field(8, ge=1, le=256)


class ClassifierParams(StrictModel):
    seed: int = Field(0, ge=0, le=MAX_SEED, description="the classifier's training seed (fixed across training seeds)")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    feature_dim: int = Field(32, ge=2)
    channels: Channels = Field(
        default_factory=lambda: [16, 32],
        min_length=1,
        description="output channels of each conv-BN-ReLU-maxpool(2) block before the global average pool",
    )


class EvalParams(StrictModel):
    n_samples: int = Field(10_000, ge=MIN_EVAL_SAMPLES, le=MAX_EVAL_SAMPLES)
    batch_size: int = Field(1000, ge=1)
    feature_extractor: Literal["classifier", "inception"] = "classifier"
    inception_dims: Literal[64, 192, 768, 2048] = 2048
    inception_weights: str | None = Field(
        None, description="pt_inception-2015-12-05-6726825d.pth; default: the torch hub cache"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ReportParams(StrictModel):
    n_images: int = Field(64, ge=1, le=1024)


class Params(BaseSettings):
    """Mirror of params.yaml. Field order follows the file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid", allow_inf_nan=False
    )

    seed: int = Field(0, ge=0, le=MAX_SEED)
    entropy_weight: EntropyWeight = DEFAULT_ENTROPY_WEIGHT
    data: DataParams = Field(default_factory=DataParams)
    model: ModelParams = Field(default_factory=ModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    objectives: ObjectivesParams = Field(default_factory=ObjectivesParams)
    density: DensityParams = Field(default_factory=DensityParams)
    export: ExportParams = Field(default_factory=ExportParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)
    eval: EvalParams = Field(default_factory=EvalParams)
    report: ReportParams = Field(default_factory=ReportParams)

    @field_validator("*", mode="before")
    @classmethod
    def _strict(cls, value: Any, info: ValidationInfo) -> Any:
        return strict_scalars(cls, value, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        size = self.data.image_size
        for key, layers in (
            ("model.encoder_channels", len(self.model.encoder_channels)),
            ("model.decoder_channels", len(self.model.decoder_channels) - 1),
        ):
            if size % 2**layers:  # eae.models.networks.ArchConfig: every stride-2 layer halves (doubles) the size
                raise ValueError(
                    f"data.image_size ({size}) must be divisible by 2^{layers} = {2**layers}: {key} makes "
                    f"{layers} stride-2 layers"
                )
        if self.model.kernel_size > self.data.image_size:
            # The first stride-2 conv sees the whole image: a wider kernel only adds taps on the zero
            # padding, costing k^2 multiplications per output.
            raise ValueError(
                f"model.kernel_size ({self.model.kernel_size}) must not exceed data.image_size "
                f"({self.data.image_size}): a kernel wider than the image only covers zero padding"
            )
        if not self.model.code_batchnorm and self.model.objective != "eae":
            raise ValueError(
                f"model.code_batchnorm false is the EAE's ablation: objective {self.model.objective} has no code BatchNorm"
            )
        if self.model.objective == "eae" and self.objectives.eae.entropy_k >= self.train.batch_size:
            raise ValueError(
                f"objectives.eae.entropy_k ({self.objectives.eae.entropy_k}) must be smaller than "
                f"train.batch_size ({self.train.batch_size}): the k-th neighbour is searched in the batch"
            )
        t = self.train
        if t.batch_size % (t.nproc_per_node * t.nnodes):
            raise ValueError(
                f"train.batch_size ({t.batch_size}) must be a multiple of the number of training "
                f"processes, train.nproc_per_node x train.nnodes ({t.nproc_per_node * t.nnodes})"
            )
        needs_val = [
            k
            for k, on in (
                ("train.select: best_val", t.select == "best_val"),
                ("train.lr_schedule: plateau", t.lr_schedule == "plateau"),
            )
            if on
        ]
        if needs_val and t.val_fraction == 0:
            raise ValueError(f"{' and '.join(needs_val)} need a validation split: set train.val_fraction > 0")
        if t.node_rank >= t.nnodes:
            raise ValueError(f"train.node_rank ({t.node_rank}) must be smaller than train.nnodes ({t.nnodes})")
        if t.nnodes > 1 and not t.rdzv_endpoint:
            raise ValueError("train.rdzv_endpoint (host:port of node 0) is required when train.nnodes > 1")
        if self.export.sampler == "two_stage" and self.model.objective != "two_stage_vae":
            raise ValueError(
                f"export.sampler two_stage needs model.objective two_stage_vae (got {self.model.objective})"
            )
        if self.export.sampler == FLOW and not self.density.flow.enabled:
            raise ValueError("export.sampler flow needs density.flow.enabled: true (fit_density fits the flow)")
        if self.density.flow.enabled and self.model.latent_dim < 2:
            raise ValueError(
                f"density.flow.enabled needs model.latent_dim >= 2 (got {self.model.latent_dim}): "
                "a coupling layer transforms some dimensions given the others"
            )
        need, what = max(memory_needs(self))
        memory = physical_memory()
        if memory is not None and need > memory:
            raise ValueError(
                f"{what} needs at least {human_bytes(need)} of memory, more than this machine has "
                f"({human_bytes(memory)}): these values cannot be allocated"
            )
        return self

    def objective_weights(self) -> dict:
        """The weights ``eae.models.objectives.registry.build_objective`` takes for ``model.objective``:
        its ``objectives`` section (for the EAE, with the top-level ``entropy_weight``)."""
        name = self.model.objective
        weights = getattr(self.objectives, name).model_dump()
        if name == "eae":
            weights["entropy_weight"] = self.entropy_weight
        return weights

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ):
        # Environment first: it overrides the values read from params.yaml (passed as init kwargs). No
        # .env file and no secrets directory: params.yaml and EAE_ variables are the only sources.
        return env_settings, init_settings


class FileParams(Params):
    """``Params`` whose only source is the values it is given: EAE_ variables play no part."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ):
        return (init_settings,)


def params_of_file(values: dict) -> Params:
    """``Params`` of a file's values alone, without EAE_ environment overrides (what may be written back)."""
    return FileParams(**values)
