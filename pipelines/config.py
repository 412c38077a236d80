"""The typed mirror of params.yaml (pydantic-settings).

Values come from params.yaml, overridden by environment variables with the
prefix ``EAE_`` and ``__`` for nesting (``EAE_TRAIN__EPOCHS=1``,
``EAE_ENTROPY_WEIGHT=0.5``). Environment overrides are for quick local runs:
DVC does not see them, so runs that should be tracked change params.yaml
(or use ``dvc exp run -S key=value``).
"""

from __future__ import annotations

import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from eae.errors import EAEError

PARAMS_FILE = "params.yaml"
ENV_PREFIX = "EAE_"
MAX_EVAL_SAMPLES = 1_000_000


class ConfigError(EAEError):
    """Bad parameters: reported on one line, exit code 2."""


def _leaf_types(annotation: Any) -> set:
    """The scalar types a field accepts: int | None -> {int, NoneType}, list[int] -> {int}."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple):
        return set().union(*(_leaf_types(a) for a in typing.get_args(annotation)))
    return {annotation}


def _strict_scalars(model: type[BaseModel], value: Any, field: str) -> Any:
    """Refuse what pydantic's lax mode would silently convert: a boolean where a number is
    expected (``epochs: true`` would train 1 epoch) and a number where a boolean is expected
    (``compile: 2``). Strings pass: environment overrides arrive as text."""
    leaves = _leaf_types(model.model_fields[field].annotation)
    items = value if isinstance(value, list) else [value]
    if leaves & {int, float} and bool not in leaves and any(isinstance(v, bool) for v in items):
        raise ValueError("expected a number, got a boolean")
    if leaves == {bool} and not isinstance(value, (bool, str)):
        raise ValueError("expected true or false")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strict(cls, value: Any, info: ValidationInfo) -> Any:
        return _strict_scalars(cls, value, info.field_name)


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
    # 10,000 is the paper's count and 50,000 the usual FID count; beyond a million the estimate no longer
    # changes while the time (and a typo such as 1.0e9) grows without bound.
    n_samples: int = Field(10_000, ge=2, le=MAX_EVAL_SAMPLES)
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

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

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

    @field_validator("*", mode="before")
    @classmethod
    def _strict(cls, value: Any, info: ValidationInfo) -> Any:
        return _strict_scalars(cls, value, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> "Params":
        if self.model.kernel_size > self.data.image_size:
            # The first stride-2 conv sees the whole image: a wider kernel only adds taps on the zero
            # padding, costing k^2 multiplications per output (kernel_size 100 on 16 px: minutes per step).
            raise ValueError(f"model.kernel_size ({self.model.kernel_size}) must not exceed data.image_size "
                             f"({self.data.image_size}): a kernel wider than the image only covers zero padding")
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
    return f"invalid parameter '{key}': {error['msg'].removeprefix('Value error, ')} (got {error.get('input')!r}){origin}"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The nested parameter model a field holds (None for a plain value)."""
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def check_environment(environ: typing.Mapping[str, str] | None = None) -> None:
    """Refuse ``EAE_`` variables that name no parameter: pydantic-settings would ignore them, so a
    misspelt section (``EAE_TRIAN__EPOCHS=1``) would silently change nothing."""
    environ = os.environ if environ is None else environ
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX):].lower().split("__")
        model: type[BaseModel] | None = Params
        for i, part in enumerate(parts):
            if model is None or part not in model.model_fields:
                raise ConfigError(f"environment variable {var}: unknown parameter '{'.'.join(parts[:i + 1])}' "
                                  f"(overrides are EAE_<KEY> or EAE_<SECTION>__<KEY>, e.g. EAE_TRAIN__EPOCHS)")
            model = _section_model(model.model_fields[part].annotation)


def _duplicate_key(node: yaml.Node, prefix: str = "") -> tuple[str, int] | None:
    """The first key that a YAML mapping repeats (PyYAML keeps the last one silently), as
    (dotted key, line)."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            dotted = f"{prefix}{key.value}"
            if (key.tag, key.value) in seen:
                return dotted, key.start_mark.line + 1
            seen.add((key.tag, key.value))
            found = _duplicate_key(value, dotted + ".")
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, f"{prefix}{i}.")
            if found:
                return found
    return None


def read_params_file(path: str | Path) -> dict:
    """The parameter mapping of a YAML file; ConfigError (one line) when it is missing, unreadable,
    not UTF-8, not YAML, empty, not a mapping or repeats a key."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"missing parameter file {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a parameter file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read parameter file {path}: {exc.strerror or exc}") from None
    try:
        duplicate = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if duplicate:
        raise ConfigError(f"{path}: duplicate key '{duplicate[0]}' (line {duplicate[1]}); YAML would keep only "
                          "the last value")
    if raw is None:
        raise ConfigError(f"{path} is empty: it must list the parameters (see the repository's params.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters, got {type(raw).__name__}")
    return raw


def _set_dotted(raw: dict, key: str, value: object) -> None:
    *sections, leaf = key.split(".")
    node = raw
    for section in sections:
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key}: '{section}' is not a section")
        node = child
    node[leaf] = value


def load_params(path: str | Path = PARAMS_FILE, overrides: dict[str, object] | None = None) -> Params:
    """Read and validate params.yaml (+ EAE_ environment overrides, + ``overrides`` as dotted
    keys, e.g. the flow's ``--set train.epochs=3``); ConfigError (one line) on any problem."""
    path = Path(path)
    raw = read_params_file(path)
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    check_environment()
    where = f"{path} with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else str(path)
    try:
        return Params(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.config [params.yaml]``: validate, print one line, exit 0 or 2."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else PARAMS_FILE)
    try:
        load_params(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: parameters are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
