"""Stage fit_density with the hardened GMM, the learned prior (flow) and a sampling temperature, and the
stages that read its file: evaluate scores and export ships the same tempered generator."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
import yaml

from eae.evaluation.results import read_results
from eae.export.runtime import Generator as OnnxGenerator
from eae.export.runtime import draw_inputs
from eae.sampling.density import FlowDensity, load_samplers, load_temperature
from eae.sampling.generator import Generator, generated_batches
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint
from tests.helpers.workspace import assert_refused, module

FAST_FLOW = {"enabled": True, "max_epochs": 40, "patience": 5, "hidden": 16, "layers": 4}


def set_params(ws, **sections: dict) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_ok(name: str, ws) -> str:
    proc = module(name, cwd=ws)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_default_parameters_write_the_mixtures_alone(workspace):
    log = run_ok("pipelines.fit_density", workspace)
    with np.load(workspace / "models/density.npz", allow_pickle=False) as f:
        assert sorted(f.files) == sorted(
            f"{s}_{p}" for s in ("isotropic", "mvg", "gmm") for p in ("weights", "means", "covariances")
        )
    assert "sampling temperature 1" in log


def test_bayesian_gmm_with_several_initialisations(workspace):
    set_params(
        workspace, density={"gmm_kind": "bayesian", "gmm_n_init": 2, "gmm_max_iter": 500, "gmm_selection": "heldout"}
    )
    log = run_ok("pipelines.fit_density", workspace)
    assert "GMM components by heldout" in log
    gmm = load_samplers(workspace / "models/density.npz")["gmm"]
    assert np.isclose(gmm.weights.sum(), 1.0) and 1 <= len(gmm.weights) <= 3


@pytest.mark.slow
def test_flow_and_temperature_reach_evaluate_and_the_exported_generator(workspace):
    tau = 0.8
    set_params(workspace, density={"temperature": tau, "flow": FAST_FLOW}, export={"sampler": "flow"})
    log = run_ok("pipelines.fit_density", workspace)
    assert "flow prior (3-component gmm base): held-out log-likelihood" in log and "flow " in log.split("fit in")[-1]
    path = workspace / "models/density.npz"
    samplers = load_samplers(path)
    assert list(samplers) == ["isotropic", "mvg", "gmm", "flow"] and isinstance(samplers["flow"], FlowDensity)
    assert load_temperature(path) == tau
    fit = samplers["flow"].config["fit"]
    assert 1 <= fit["epochs_run"] <= FAST_FLOW["max_epochs"] and fit["n_heldout"] > 0
    assert fit["heldout_log_lik"] >= fit["heldout_start"] and samplers["flow"].components == 3

    run_ok("pipelines.feature_stats", workspace)
    run_ok("pipelines.evaluate", workspace)
    results = read_results(workspace / "reports/fid.json")
    assert results.value("fd", "flow") is not None and results.value("kid", "flow") is not None
    assert results.protocol["sampling_temperature"] == tau

    run_ok("pipelines.export", workspace)
    card = json.loads((workspace / "models/generator.json").read_text())
    assert (card["sampler"], card["temperature"], card["n_components"]) == ("flow", tau, 3)  # its base's components
    assert card["evaluation"]["metrics"]["fd"]["flow"] == results.value("fd", "flow")
    meta = {p.key: p.value for p in onnx.load(str(workspace / "models/generator.onnx")).metadata_props}
    assert meta["temperature"] == str(tau) and json.loads(meta["flow"])["model"] == samplers["flow"].config["model"]
    assert "picks the mixture component" in meta["inputs"]

    # the images the runtime draws are those evaluate scored: same inputs, same tempered flow, same decoder
    onnx_images = OnnxGenerator(workspace / "models/generator.onnx").generate(*draw_inputs(50, 4, seed=0))
    model = model_from_checkpoint(load_checkpoint(workspace / "models/eae.pt"))
    torch_gen = Generator(samplers["flow"], model.decoder, load_temperature(path))
    with torch.no_grad():
        torch_images = next(generated_batches(torch_gen, 50, 50, seed=0)).numpy()
    np.testing.assert_allclose(onnx_images, torch_images, atol=1e-4)


def test_flow_with_the_normal_base(workspace):
    set_params(workspace, density={"flow": {**FAST_FLOW, "base": "normal"}}, export={"sampler": "flow"})
    assert "flow prior (N(0, I) base)" in run_ok("pipelines.fit_density", workspace)
    assert load_samplers(workspace / "models/density.npz")["flow"].components == 0
    run_ok("pipelines.export", workspace)
    card = json.loads((workspace / "models/generator.json").read_text())
    assert (card["sampler"], card["n_components"], card["temperature"]) == ("flow", 0, 1.0)
    assert "not used" in card["inputs"][1]["meaning"]


def test_export_of_a_missing_flow_is_refused(workspace):
    set_params(workspace, export={"sampler": "flow"})
    assert_refused(module("pipelines.export", cwd=workspace), 2, r"export\.sampler flow needs density\.flow\.enabled")
