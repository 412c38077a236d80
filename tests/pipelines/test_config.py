import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import ConfigError, Params, load_params

ROOT = Path(__file__).resolve().parents[2]


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


def test_env_overrides_nested_and_top_level(tmp_path, monkeypatch):
    path = write(tmp_path, "entropy_weight: 0.3\ntrain:\n  epochs: 5\n  lr: 0.01\n")
    monkeypatch.setenv("EAE_TRAIN__EPOCHS", "1")
    monkeypatch.setenv("EAE_ENTROPY_WEIGHT", "0.7")
    p = load_params(path)
    assert p.train.epochs == 1 and p.train.lr == 0.01 and p.entropy_weight == 0.7


@pytest.mark.parametrize("text, key", [
    ("entropy_weight: -1\n", "'entropy_weight'"),
    ("train:\n  epochs: abc\n", "'train.epochs'"),
    ("bogus: 1\n", "unknown parameter 'bogus'"),
    ("train:\n  epoch: 3\n", "unknown parameter 'train.epoch'"),
    ("data:\n  source: imagenet\n", "'data.source'"),
])
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
    proc = subprocess.run([sys.executable, "-m", "pipelines.prepare"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
