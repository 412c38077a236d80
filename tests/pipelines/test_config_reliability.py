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
