"""Synthetic inputs for eae.reporting.report.report_context: small arrays, no model, no files."""

from __future__ import annotations

import numpy as np

from eae.reporting.experiments import parse_exp_show


def exp_show_rows(betas=(0.05, 0.5), fids=((7.5, 6.5, 2.5, 0.8), (9.0, 8.0, 3.0, 0.9))) -> list:
    """``dvc exp show --json`` output in DVC 3's shape: the workspace, the baseline commit and one
    experiment per further (beta, fid) pair."""

    def state(rev, name, beta, fid):
        return {
            "rev": rev,
            "name": name,
            "error": None,
            "experiments": None,
            "data": {
                "rev": rev,
                "timestamp": "2026-01-01T00:00:00",
                "params": {
                    "params.yaml": {
                        "data": {
                            "seed": 0,
                            "entropy_weight": beta,
                            "data": {"source": "digits"},
                            "train": {"epochs": 2, "lr": 0.001},
                        }
                    }
                },
                "metrics": {
                    "reports/fid.json": {
                        "data": {
                            "schema": "eae-results/2",
                            "protocol": {"feature_extractor": "classifier"},
                            "metrics": {"fd": dict(zip(("isotropic", "mvg", "gmm", "reconstruction"), fid))},
                        }
                    }
                },
            },
        }

    head = state("a" * 40, "main", betas[0], fids[0])
    head["experiments"] = [
        {
            "name": f"exp{i}",
            "executor": {"state": "success", "name": None, "local": None},
            "revs": [state(f"{i}" * 40, f"exp{i}", b, f)],
        }
        for i, (b, f) in enumerate(zip(betas[1:], fids[1:]), start=1)
    ]
    return [state("workspace", None, betas[0], fids[0]), head]


def synthetic_inputs(seed: int = 0, d: int = 4, dataset: str = "digits", **overrides) -> dict:
    rng = np.random.default_rng(seed)
    img = lambda n: rng.random((n, 1, 8, 8)).astype(np.float32)  # noqa: E731
    params = {
        "seed": 0,
        "entropy_weight": 0.05,
        "data": {"source": dataset, "image_size": 8},
        "model": {"latent_dim": d, "encoder_channels": [8, 16]},
        "train": {"epochs": 3, "batch_size": 100},
    }
    args = {
        "run": {
            "dataset": dataset,
            "params": params,
            "git": {
                "rev": "0123456789abcdef0123456789abcdef01234567",
                "dirty": True,
                "changes": ["params.yaml"],
                "more": 0,
                "outputs": ["dvc.lock", "reports/fid.json"],
            },
            "data": {
                "md5": "3693f77b84f92173de6bb7c2a8bfdcf0.dir",
                "content_hash": "sha256:" + "ab" * 32,
                "source": dataset,
                "image_shape": [1, 8, 8],
                "counts": {"train": 1000, "test": 300},
            },
            "durations": [
                {"stage": "train", "seconds": 12.5, "source": "checkpoint"},
                {"stage": "evaluate", "seconds": None, "source": "not recorded by the stage"},
            ],
            "generated_at": "2026-01-01 00:00 UTC",
        },
        "fid": {
            "schema": "eae-results/2",
            "metrics": {"fd": {"isotropic": 7.5, "mvg": 6.5, "gmm": 2.5, "reconstruction": 0.8}},
            "protocol": {
                "metric_name": "Fréchet distance in <classifier> features",
                "feature_extractor": "classifier",
                "n_generated": 300,
                "reference": {"split": "test", "n": 300},
                "classifier_test_accuracy": 0.97,
            },
        },
        "samples": {name: img(16) for name in ("isotropic", "mvg", "gmm")},
        "originals": (rng.random((16, 1, 8, 8)) * 255).astype(np.uint8),
        "reconstructions": img(16),
        "interpolation": {
            "start": (rng.random((3, 1, 8, 8)) * 255).astype(np.uint8),
            "end": (rng.random((3, 1, 8, 8)) * 255).astype(np.uint8),
            "path": rng.random((3, 10, 1, 8, 8)).astype(np.float32),
        },
        "latents": rng.standard_normal((300, d)),
        "gmm_weights": np.array([0.5, 0.3, 0.2]),
        "history": {"loss": [3.0, 2.0, 1.5], "recon": [4.0, 3.0, 2.5], "entropy": [1.0, 2.0, 2.5], "lr": [1e-3] * 3},
        "train_metrics": {"final_loss": 1.5, "test_mse_per_pixel": 0.004, "epochs": 3, "train_seconds": 12.5},
        "generator": {
            "card": {
                "file": "generator.onnx",
                "sampler": "gmm",
                "n_components": 3,
                "bytes": 2048,
                "opset": 18,
                "sha256": "cd" * 32,
                "evaluation": {
                    "schema": "eae-results/2",
                    "metrics": {"fd": {"isotropic": 7.5, "mvg": 6.5, "gmm": 2.5, "reconstruction": 0.8}},
                },
            },
            "images": img(16),
            "parity": 0,
        },
        "experiments": parse_exp_show(exp_show_rows()),
        "experiments_error": None,
        "seed": seed,
    }
    args.update(overrides)
    return args
