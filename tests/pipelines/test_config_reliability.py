"""Bad parameters, as a careless user or a hostile file would write them: every stage refuses
them with exit 2 and one line naming the key (or the file, or the variable), before it touches
any output."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tests.helpers.workspace import assert_refused, fingerprint, module, tiny_params

pytestmark = pytest.mark.reliability


def params_text(**sections) -> str:
    return yaml.safe_dump(tiny_params(**sections), sort_keys=False)


# (what a user wrote into params.yaml, the culprit the one line must name)
BAD_FILES = {
    # already refused before the probe
    "bad type": (params_text(train={"epochs": "abc"}), r"'train\.epochs'"),
    "unknown key": (params_text(train={"epoch": 3}), r"unknown parameter 'train\.epoch'"),
    "bad choice": (params_text(data={"source": "imagenet"}), r"'data\.source'"),
    # item 6: tracebacks before
    "entropy_k >= batch": (
        params_text(objectives={"eae": {"entropy_k": 100, "decoder_l2": 0.0, "spectral_norm": False}}),
        r"objectives\.eae\.entropy_k \(100\).*train\.batch_size \(100\)",
    ),
    "n_samples 1e9": (
        params_text().replace("n_samples: 300", "n_samples: 1.0e+9"),
        r"'eval\.n_samples': .*less than or equal to 1000000",
    ),
    # item 7: accepted silently before
    "empty file": ("# all parameters were deleted\n", r"params\.yaml is empty"),
    "epochs: true": (params_text(train={"epochs": True}), r"'train\.epochs': expected a number, got a boolean"),
    "compile: 2": (params_text(train={"compile": 2}), r"'train\.compile': expected true or false"),
    "duplicate key": (
        params_text().replace("  epochs: 2\n", "  epochs: 2\n  epochs: 50\n", 1),
        r"duplicate key 'train\.epochs' \(line \d+\)",
    ),
    "classifier channel 0": (
        params_text(classifier={"channels": [16, 0]}),
        r"'classifier\.channels': .*channel counts must be >= 1",
    ),
    "kernel_size 100": (
        params_text(model={"kernel_size": 100}),
        r"model\.kernel_size \(100\) must not exceed data\.image_size \(16\)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_params_file_is_refused_before_any_output_changes(workspace, case):
    text, culprit = BAD_FILES[case]
    (workspace / "params.yaml").write_text(text)
    before = fingerprint(workspace)
    assert_refused(module("pipelines.prepare", cwd=workspace), 2, culprit)
    assert fingerprint(workspace) == before


def test_params_file_that_is_not_utf8_or_a_directory(workspace):
    (workspace / "params.yaml").write_bytes(b"seed: 0\ntrain:\n  epochs: \xff\xfe\n")
    before = fingerprint(workspace)
    assert_refused(module("pipelines.prepare", cwd=workspace), 2, r"params\.yaml: not UTF-8 text")
    (workspace / "params.yaml").unlink()
    (workspace / "params.yaml").mkdir()
    assert_refused(module("pipelines.prepare", cwd=workspace), 2, r"params\.yaml is a directory")
    (workspace / "params.yaml").rmdir()
    assert fingerprint(workspace) == {k: v for k, v in before.items() if k != "params.yaml"}


@pytest.mark.parametrize(
    "variable, value, culprit",
    [
        ("EAE_TRIAN__EPOCHS", "1", r"environment variable EAE_TRIAN__EPOCHS: unknown parameter 'trian'"),
        ("EAE_TRAIN__EPOCS", "1", r"EAE_TRAIN__EPOCS: unknown parameter 'train\.epocs'"),
        ("EAE_SEEED", "1", r"EAE_SEEED: unknown parameter 'seeed'"),
        (
            "EAE_TRAIN__EPOCHS",
            "abc",
            r"'train\.epochs'.*\[from environment variable EAE_TRAIN__EPOCHS\]",
        ),  # handled before
    ],
)
def test_misspelt_or_bad_environment_override_is_refused(workspace, variable, value, culprit):
    before = fingerprint(workspace)
    assert_refused(module("pipelines.prepare", cwd=workspace, **{variable: value}), 2, culprit)
    assert fingerprint(workspace) == before


def test_valid_environment_override_still_applies(workspace, monkeypatch):
    from pipelines.config import load_params

    monkeypatch.setenv("EAE_OBJECTIVES__EAE__ENTROPY_K", "3")
    monkeypatch.setenv("EAE_TRAIN__EPOCHS", "7")
    p = load_params(workspace / "params.yaml")
    assert p.objectives.eae.entropy_k == 3 and p.train.epochs == 7


def test_gmm_components_larger_than_the_data_names_the_key(workspace):
    """Item 7: fit_density said 'cannot fit a 2000-component GMM' without naming the parameter."""
    (workspace / "params.yaml").write_text(params_text(density={"gmm_components": 2000}))
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.fit_density", cwd=workspace),
        2,
        r"density\.gmm_components \(2000\) exceeds the \d+ training codes",
    )
    assert fingerprint(workspace) == before


def test_repository_configs_stay_valid():
    from pipelines.config import load_params
    from tests.helpers.repos import ROOT

    for path in [ROOT / "params.yaml", *sorted((ROOT / "configs").glob("*.yaml"))]:
        p = load_params(path)
        assert p.model.kernel_size <= p.data.image_size and np.isfinite(p.entropy_weight)


# --------------------------------------------------------------------------- issue 22, class 3: the bounds table
# Every accepted value must run: each bound is the limit of the code that takes the value.

CANNOT_RUN = {
    "infinite float": (params_text().replace("lr: 0.001", "lr: .inf", 1), r"'train\.lr': Input should be a finite"),
    "NaN float": (params_text(entropy_weight=float("nan")), r"'entropy_weight': Input should be a finite"),
    "seed beyond numpy": (params_text(seed=2**32), r"'seed': Input should be less than or equal to 4294967295"),
    "classifier seed beyond numpy": (
        params_text(classifier={"seed": 2**40}),
        r"'classifier\.seed': Input should be less than or equal to 4294967295",
    ),
    "opset the exporter lacks": (params_text(export={"opset": 13}), r"'export\.opset': .*greater than or equal to 18"),
    "opset onnxruntime lacks": (params_text(export={"opset": 27}), r"'export\.opset': .*less than or equal to 26"),
    "n_samples below precision/recall": (
        params_text(eval={"n_samples": 3}),
        r"'eval\.n_samples': Input should be greater than or equal to 4",
    ),
    "timeout beyond timedelta": (
        params_text(train={"dist_timeout_s": 1e300}),
        r"'train\.dist_timeout_s': Input should be less than or equal to",
    ),
    "image larger than Pillow decodes": (
        params_text(data={"image_size": 16384}, model={"encoder_channels": [8], "decoder_channels": [8, 8]}),
        r"'data\.image_size': Input should be less than or equal to 9459",
    ),
    "image size the strides cannot halve": (
        params_text(data={"image_size": 18}),
        r"data\.image_size \(18\) must be divisible by 2\^2 = 4: model\.encoder_channels makes 2 stride-2 layers",
    ),
    "latent size that cannot be allocated": (
        params_text(model={"latent_dim": 10**12}),
        r"one training step \(.*model\.latent_dim.*\) needs at least [\d.]+ [PE]B of memory, more than this machine has",
    ),
    "channels that cannot be allocated": (
        params_text(model={"encoder_channels": [10**12, 16]}),
        r"one training step .* needs at least [\d.]+ [PE]B of memory",
    ),
    "classifier that cannot be allocated": (
        params_text(classifier={"feature_dim": 10**15}),
        r"the digits classifier \(classifier\.feature_dim\) needs at least 48\.0 PB of memory",
    ),
    "decoding processes that cannot be allocated": (
        params_text(data={"workers": 10**8}),
        r"the decoding processes \(data\.workers\) needs at least 2\.00 PB of memory",
    ),
}


@pytest.mark.parametrize("case", list(CANNOT_RUN))
def test_value_that_cannot_run_is_refused(workspace, case):
    """Class 3: each was accepted, then failed deep in a stage (a traceback) or, for an opset, ended in a
    'successful' export naming an opset the file does not have."""
    text, culprit = CANNOT_RUN[case]
    (workspace / "params.yaml").write_text(text)
    before = fingerprint(workspace)
    assert_refused(module("pipelines.prepare", cwd=workspace), 2, culprit)
    assert fingerprint(workspace) == before


def test_bounds_are_the_libraries_limits():
    """The table's bounds are where the code that takes each value stops working (a library upgrade that
    moves one fails here)."""
    import datetime

    import onnxruntime as ort
    from onnx import TensorProto, helper
    from PIL import Image

    from eae.data.decode import MAX_IMAGE_PIXELS
    from eae.evaluation.metrics import PR_NEIGHBOURHOOD, precision_recall
    from pipelines import config

    np.random.seed(config.MAX_SEED)  # numpy's legacy seeding, scikit-learn's random_state
    with pytest.raises(ValueError):
        np.random.seed(config.MAX_SEED + 1)
    rng = np.random.default_rng(0)
    precision_recall(rng.random((config.MIN_EVAL_SAMPLES, 3)), rng.random((config.MIN_EVAL_SAMPLES, 3)))
    assert config.MIN_EVAL_SAMPLES == PR_NEIGHBOURHOOD + 1
    datetime.timedelta(seconds=config.MAX_TIMEOUT_S)
    with pytest.raises(OverflowError):
        datetime.timedelta(seconds=2 * config.MAX_TIMEOUT_S)
    assert config.MAX_IMAGE_SIZE**2 <= MAX_IMAGE_PIXELS < (config.MAX_IMAGE_SIZE + 1) ** 2
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS

    def loads(opset: int) -> bool:
        graph = helper.make_graph(
            [helper.make_node("Sigmoid", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=11)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return True
        except Exception:  # noqa: BLE001 - onnxruntime's own exception types
            return False

    assert loads(config.MAX_OPSET) and not loads(config.MAX_OPSET + 1)


def test_memory_check_counts_the_real_networks():
    """The memory check counts, without building them, exactly the weights and layer outputs of the networks
    (so its training-step need is a lower bound: it refuses nothing that fits)."""
    import torch
    from torch import nn

    from eae.models.networks import ArchConfig
    from eae.models.objectives.registry import build_objective
    from pipelines.config import Params, memory_needs, network_size

    model_params = {"latent_dim": 5, "encoder_channels": [8, 16, 4], "decoder_channels": [6, 8, 3]}
    p = Params(**tiny_params(model=model_params, train={"batch_size": 10}))
    arch = ArchConfig((1, 16, 16), 5, (8, 16, 4), (6, 8, 3), p.model.kernel_size)
    model = build_objective("eae", arch, p.objective_weights()).eval()
    outputs = {"encoder": [], "decoder": []}
    for part in ("encoder", "decoder"):
        for layer in getattr(model, part).modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                layer.register_forward_hook(lambda _m, _i, out, part=part: outputs[part].append(out[0].numel()))
    with torch.no_grad():
        model.decoder(model.encoder(torch.zeros(1, 1, 16, 16)))
    weights, encoder, decoder = network_size(p)
    assert weights == sum(x.numel() for x in model.parameters())
    assert encoder == [256, *outputs["encoder"]] and decoder == [5, *outputs["decoder"]]
    step = next(n for n, what in memory_needs(p) if what.startswith("one training step"))
    assert step == 4 * (4 * weights + 10 * (sum(encoder) + sum(decoder)))


def test_large_eval_batch_is_accepted_because_it_is_capped():
    """A value that runs must pass: evaluation never makes a batch larger than eval.n_samples
    (generated_batches), so a huge eval.batch_size costs nothing."""
    from pipelines.config import Params

    assert Params(**tiny_params(eval={"batch_size": 10**12, "n_samples": 300})).eval.batch_size == 10**12


# --------------------------------------------------------------------------- class 4 and 5: the params loader


def test_params_file_that_is_a_fifo_or_a_device_does_not_hang(workspace, tmp_path):
    """Class 4: reading a FIFO blocked forever (nothing writes to it), /dev/zero never ended."""
    import os

    fifo = tmp_path / "params.fifo"
    os.mkfifo(fifo)
    for path, kind in (
        (fifo, r"a FIFO \(named pipe\)"),
        ("/dev/zero", "a character device"),
        (tmp_path, "a directory"),
    ):
        proc = module("pipelines.config", str(path), cwd=workspace)
        assert_refused(proc, 2, rf"parameter file {path} is {kind}, not a regular file")


def test_params_file_too_large_is_refused(workspace):
    (workspace / "params.yaml").write_text(params_text() + "#" * 2_000_000 + "\n")
    assert_refused(
        module("pipelines.prepare", cwd=workspace), 2, r"parameter file params\.yaml is larger than 1\.00 MB"
    )


@pytest.mark.parametrize(
    "variable, value, culprit",
    [
        (
            "EAE_MODEL__ENCODER_CHANNELS",
            "[8, 16",
            r"environment variable EAE_MODEL__ENCODER_CHANNELS: not valid JSON \(Expecting ',' delimiter, at "
            r"character 6 of '\[8, 16'\); 'model\.encoder_channels' takes JSON such as \[32, 64, 128\]",
        ),
        ("EAE_TRAIN", "{epochs: 3}", r"environment variable EAE_TRAIN: not valid JSON .*'train' takes JSON such as"),
        (
            "EAE_OBJECTIVES__TWO_STAGE_VAE__SECOND_STAGE",
            "latent_dim=3",
            r"EAE_OBJECTIVES__TWO_STAGE_VAE__SECOND_STAGE: not valid JSON",
        ),
    ],
)
def test_malformed_json_in_an_environment_variable(workspace, variable, value, culprit):
    """Class 4: pydantic-settings' SettingsError came out as a traceback naming the section, not the variable."""
    before = fingerprint(workspace)
    assert_refused(module("pipelines.prepare", cwd=workspace, **{variable: value}), 2, culprit)
    assert fingerprint(workspace) == before


def test_huge_value_is_not_echoed_whole(workspace):
    """Class 5: a 100 kB value came back whole in the error line (and in the flow's logs)."""
    value = "x" * 100_000
    proc = module("pipelines.prepare", cwd=workspace, EAE_TRAIN__RDZV_ENDPOINT=value)
    line = assert_refused(proc, 2, r"'train\.rdzv_endpoint': .*\(100,002 characters\)")
    assert len(line) < 400
    (workspace / "params.yaml").write_text(params_text(data={"source": "y" * 100_000}))
    assert len(assert_refused(module("pipelines.prepare", cwd=workspace), 2, r"'data\.source'")) < 600
