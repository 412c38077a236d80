import base64
import io

import numpy as np
from PIL import Image

from eae.report import figure_data_uri, image_grid, png_data_uri, render_report, training_curves


def decode(uri):
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


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


def test_render_report_is_self_contained():
    uri = png_data_uri(image_grid(np.random.default_rng(0).random((4, 1, 8, 8))))
    html = render_report({
        "dataset": "digits", "entropy_weight": 0.05, "latent_dim": 8, "epochs": 3, "seed": 0,
        "fid": {"metric": "Fréchet distance in <features>", "n_samples": 10, "n_test": 5, "isotropic": 1.0,
                "mvg": 2.0, "gmm": 3.0, "reconstruction": 0.5, "classifier_test_accuracy": 0.9},
        "samplers": ["isotropic", "mvg", "gmm"], "grids": {"gmm": uri}, "originals": uri, "reconstructions": uri,
        "curves": figure_data_uri(training_curves({"loss": [3, 2, 1], "lr": [1e-3] * 3})),
        "train_metrics": {"final_loss": 1.0},
        "card": {"file": "generator.onnx", "sampler": "gmm", "n_components": 10, "bytes": 2048, "opset": 18,
                 "sha256": "ab" * 32},
        "onnx_grid": uri,
    })
    assert "3.0000" in html and "0.9000" in html
    assert "&lt;features&gt;" in html  # autoescaped
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert html.count("data:image/png;base64,") == 5
