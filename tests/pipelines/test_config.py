import subprocess
import sys

import pytest

from pipelines.config import ConfigError, Params, load_params
from tests.helpers.repos import ROOT


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_repository_params_yaml_is_valid_and_complete():
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = load_params(ROOT / "params.yaml")
    # The file spells out every parameter: nothing is left to a hidden default.
    assert set(raw) == set(Params.model_fields)
    for section, model in Params.model_fields.items():
        if isinstance(raw[section], dict):
            assert set(raw[section]) == set(model.annotation.model_fields), section
    assert params.entropy_weight == raw["entropy_weight"]
    # ... and its values are the typed defaults, which configs/*.yaml are composed over.
    assert raw == Params.model_construct().model_dump(mode="json")


@pytest.mark.parametrize("name", ["celeba", "cifar10", "mnist"])
def test_paper_configs_hold_only_what_differs_from_the_defaults(name):
    import yaml

    from eae.reporting.experiments import flatten

    raw = flatten(yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text()))
    defaults = flatten(Params.model_construct().model_dump(mode="json"))
    assert raw and all(raw[k] != defaults[k] for k in raw), [k for k in raw if raw[k] == defaults.get(k)]
    params = load_params(ROOT / "configs" / f"{name}.yaml")  # a partial file validates over the defaults
    assert params.data.source == name and params.eval.feature_extractor == "inception"
    assert params.train.batch_size == 100


def test_compose_starts_from_the_defaults_and_keeps_the_layout(tmp_path, monkeypatch):
    import shutil

    import yaml

    from pipelines.config import compose_params

    params = shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setenv("EAE_TRAIN__EPOCHS", "1")  # an override for a local run is never written into the file
    compose_params(ROOT / "configs" / "celeba.yaml", params)
    celeba = params.read_text()
    assert celeba.startswith("# Composed by pipelines.config from ") and "  source: celeba" in celeba
    assert load_params(params) == load_params(ROOT / "configs" / "celeba.yaml")
    assert yaml.safe_load(celeba)["train"]["epochs"] == 70
    assert "image_size: 64        # centre crop 140x140" in celeba  # the config's comment replaces the default's
    lines = (ROOT / "params.yaml").read_text().splitlines()
    assert (
        [line for line in lines if line.startswith("#")]
        == [  # every comment line of the defaults stays
            line for line in celeba.splitlines()[2:] if line.startswith("#")
        ]
    )
    compose_params(ROOT / "configs" / "mnist.yaml", params)  # nothing of celeba left behind
    mnist = yaml.safe_load(params.read_text())
    assert mnist["objectives"]["eae"]["spectral_norm"] is False and mnist["data"]["workers"] == 0
    assert "CelebA" not in params.read_text().split("objectives:")[1].split("rae:")[0]
    monkeypatch.delenv("EAE_TRAIN__EPOCHS")
    assert load_params(params) == load_params(ROOT / "configs" / "mnist.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("data:\n  sorce: celeba\n", "unknown parameter 'data.sorce'"),
        ("data: celeba\n", "'data' is a section"),
        ("train:\n  epochs: 0\n", "'train.epochs'"),
    ],
)
def test_compose_refuses_bad_overrides_and_leaves_params_alone(tmp_path, text, message):
    import shutil

    from pipelines.config import compose_params

    params = shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        compose_params(tmp_path / "bad.yaml", params)
    assert params.read_text() == (ROOT / "params.yaml").read_text()


def test_env_overrides_nested_and_top_level(tmp_path, monkeypatch):
    path = write(tmp_path, "entropy_weight: 0.3\ntrain:\n  epochs: 5\n  lr: 0.01\n")
    monkeypatch.setenv("EAE_TRAIN__EPOCHS", "1")
    monkeypatch.setenv("EAE_ENTROPY_WEIGHT", "0.7")
    p = load_params(path)
    assert p.train.epochs == 1 and p.train.lr == 0.01 and p.entropy_weight == 0.7


@pytest.mark.parametrize(
    "text, key",
    [
        ("entropy_weight: -1\n", "'entropy_weight'"),
        ("train:\n  epochs: abc\n", "'train.epochs'"),
        ("bogus: 1\n", "unknown parameter 'bogus'"),
        ("train:\n  epoch: 3\n", "unknown parameter 'train.epoch'"),
        ("data:\n  source: imagenet\n", "'data.source'"),
        ("density:\n  gmm_kind: diag\n", "'density.gmm_kind'"),
        ("density:\n  gmm_weight_prior: beta\n", "'density.gmm_weight_prior'"),
        ("density:\n  gmm_n_init: 0\n", "'density.gmm_n_init'"),
        ("density:\n  temperature: 0\n", "'density.temperature'"),
        ("density:\n  flow:\n    heldout_fraction: 1.0\n", "'density.flow.heldout_fraction'"),
        ("density:\n  flow:\n    layer: 3\n", "unknown parameter 'density.flow.layer'"),
        ("export:\n  sampler: flow\n", "export.sampler flow needs density.flow.enabled"),
        ("model:\n  latent_dim: 1\ndensity:\n  flow:\n    enabled: true\n", "needs model.latent_dim >= 2"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key) as info:
        load_params(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_bad_env_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("EAE_TRAIN__EPOCHS", "abc")
    with pytest.raises(ConfigError, match="EAE_TRAIN__EPOCHS"):
        load_params(write(tmp_path, "{}"))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="missing"):
        load_params(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(write(tmp_path, "train: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_params(write(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize("text", ["entropy_weight: -1\n", "train:\n  epochs: abc\n"])
def test_stage_exits_2_with_one_line(tmp_path, text):
    write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.prepare"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr


def test_data_sources_are_those_the_library_registers():
    from eae.data.sources import SOURCES
    from pipelines.config import SOURCE_CHANNELS

    assert list(SOURCE_CHANNELS) == list(SOURCES)


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("seed: 0\nseed: 1\n", "seed", 2),
        ("seed: 0\ntrain:\n  epochs: 2\n  lr: 0.1\n  epochs: 50\n", "train.epochs", 5),
        ("objectives:\n  eae:\n    entropy_k: 3\n    entropy_k: 4\n", "objectives.eae.entropy_k", 4),
        ("train: {epochs: 1, epochs: 2}\n", "train.epochs", 1),
        ("x:\n  - a: 1\n  - b: 1\n    b: 2\n", "x.1.b", 4),
        ("x: [1, {a: 1, a: 2}]\n", "x.1.a", 1),
    ],
)
def test_duplicate_key_is_named_with_its_path_and_line(tmp_path, text, key, line):
    """ruamel.yaml refuses the repeated key itself; its marks give the dotted key and the line."""
    from pipelines.config import read_params_file

    with pytest.raises(ConfigError, match=rf"duplicate key '{key}' \(line {line}\); YAML would keep only the last"):
        read_params_file(write(tmp_path, text))


def test_params_are_read_as_dvc_reads_them(tmp_path):
    """One YAML reader: the values validated are those DVC tracks (YAML 1.2: 1e3 is a number, yes a string)."""
    from dvc.utils.serialize import load_yaml

    from pipelines.config import read_params_file

    for path in [ROOT / "params.yaml", *sorted((ROOT / "configs").glob("*.yaml"))]:
        assert read_params_file(path) == load_yaml(path)
    path = write(tmp_path, "train:\n  epochs: 1e3\n  compile: yes\n")
    assert read_params_file(path) == load_yaml(path) == {"train": {"epochs": 1000.0, "compile": "yes"}}
    assert load_params(path).train.epochs == 1000 and load_params(path).train.compile is True


def test_file_values_alone_ignore_the_environment(monkeypatch):
    """What compose writes back is validated without EAE_ overrides (pydantic-settings' sources)."""
    from pipelines.config import params_of_file

    monkeypatch.setenv("EAE_TRAIN__EPOCHS", "1")
    assert Params(train={"epochs": 5}).train.epochs == 1
    assert params_of_file({"train": {"epochs": 5}}).train.epochs == 5
    assert isinstance(params_of_file({}), Params)


def test_every_parameter_has_an_environment_variable_the_check_accepts():
    """check_environment walks the fields as pydantic-settings does: every key of params.yaml, section
    or leaf, at any depth, is a valid variable name."""
    from eae.reporting.experiments import flatten
    from pipelines.config import check_environment

    defaults = Params.model_construct().model_dump(mode="json")
    keys = {".".join(k.split(".")[:n]) for k in flatten(defaults) for n in range(1, k.count(".") + 2)}
    assert "objectives.two_stage_vae.second_stage.latent_dim" in keys and "objectives.two_stage_vae" in keys
    for key in sorted(keys):
        check_environment({"EAE_" + key.replace(".", "__").upper(): "1"})
    check_environment({"EAE_TRAIN": '{"epochs": 3}', "eae_model__latent_dim": "3", "OTHER": "x"})
    with pytest.raises(ConfigError, match=r"environment variable EAE_MODEL__ENCODER_CHANNELS__0: unknown parameter"):
        check_environment({"EAE_MODEL__ENCODER_CHANNELS__0": "3"})
