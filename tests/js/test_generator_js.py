"""The generator outside Python: js/sample.mjs (onnxruntime-node) and the static page js/index.html
(onnxruntime-web, wasm, in headless Chromium) run the fixed inputs of the test vectors and give their images
within one level per pixel; the Node script also writes a PNG grid.

The npm packages come from js/package-lock.json (`npm ci --prefix js`, which .ci/run runs); without them, or
without node, these tests skip and say why. Chromium: tests/helpers/browser.py."""

import base64
import functools
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eae.export.vectors import make_test_vectors, max_level_difference, read_test_vectors
from eae.io import write_json
from tests.helpers.browser import dump_dom, require_chromium, screenshot
from tests.helpers.repos import ROOT

JS = ROOT / "js"
NODE = shutil.which("node")


def require_node_modules() -> None:
    if NODE is None:
        pytest.skip("node is not installed: the JS tests need Node.js >= 20.15 and `npm ci --prefix js`")
    for package in ("onnxruntime-node", "onnxruntime-web"):
        if not (JS / "node_modules" / package / "package.json").exists():
            pytest.skip(f"js/node_modules/{package} is missing: run `npm ci --prefix js` (.ci/run does)")


@pytest.fixture(scope="module")
def models(tiny_generator, tmp_path_factory) -> Path:
    """generator.onnx + its card + test_vectors.json (12 draws, seed 5) of the tiny generator."""
    out = tmp_path_factory.mktemp("js") / "models"
    out.mkdir()
    for name in ("generator.onnx", "generator.json"):
        shutil.copy2(tiny_generator.folder / name, out / name)
    write_json(out / "test_vectors.json", make_test_vectors(out / "generator.onnx", 12, seed=5))
    return out


def node(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([NODE, str(JS / "sample.mjs"), *args], capture_output=True, text=True, timeout=120)


def test_node_matches_the_test_vectors(models, tmp_path):
    require_node_modules()
    proc = node(
        str(models / "generator.onnx"),
        "--vectors",
        str(models / "test_vectors.json"),
        "--dump",
        str(tmp_path / "d.json"),
    )
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["ok"] and verdict["n"] == 12 and verdict["max_level_difference"] <= 1
    _, _, _, expected = read_test_vectors(models / "test_vectors.json")
    made = np.frombuffer(base64.b64decode(json.loads((tmp_path / "d.json").read_text())["images"]), np.uint8)
    assert max_level_difference(made.reshape(expected.shape), expected) <= 1  # checked here too, not only in JS


def test_node_flags_images_that_differ(models, tmp_path):
    require_node_modules()
    record = json.loads((models / "test_vectors.json").read_text())
    images = bytearray(base64.b64decode(record["images"]["base64"]))
    images[0] = (images[0] + 3) % 256  # one pixel off by 3 levels
    record["images"]["base64"] = base64.b64encode(bytes(images)).decode()
    (tmp_path / "v.json").write_text(json.dumps(record))
    proc = node(str(models / "generator.onnx"), "--vectors", str(tmp_path / "v.json"))
    assert proc.returncode == 1 and json.loads(proc.stdout)["max_level_difference"] == 3


def test_node_writes_a_png_grid_and_refuses_bad_requests(models, tmp_path):
    require_node_modules()
    proc = node(str(models / "generator.onnx"), "-n", "10", "--seed", "1", "-o", str(tmp_path / "g.png"))
    assert proc.returncode == 0, proc.stderr
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (3 * 9 + 1, 4 * 9 + 1, 3)  # 10 images of 8 px: 4 per row, 1 px white borders
    assert (grid[0] == 255).all() and grid[1:9, 1:9].std() > 0
    bad = node(str(models / "generator.onnx"), "-n", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: -n must be an integer between 1 and 4096, got 0"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_browser_page_matches_the_test_vectors(models, tmp_path):
    """js/index.html on a local HTTP server (127.0.0.1), in headless Chromium: the page fetches the model and
    card, runs the vectors on wasm and draws a grid; its verdict and images are in <pre id="result">."""
    require_node_modules()
    chromium = require_chromium()
    site = tmp_path / "site"
    site.mkdir()
    (site / "js").symlink_to(JS)
    (site / "models").symlink_to(models)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/js/index.html?vectors=../models/test_vectors.json&n=16&seed=2"
        dom = dump_dom(chromium, url)
        found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
        assert found and found.group(1), dom[-2000:]
        result = json.loads(found.group(1).replace("&quot;", '"'))
        assert result["ok"] and result["backend"] == "wasm", result
        assert result["vectors_n"] == 12 and result["max_level_difference"] <= 1 and result["sampled"] == 16
        _, _, _, expected = read_test_vectors(models / "test_vectors.json")
        made = np.frombuffer(base64.b64decode(result["images"]), np.uint8).reshape(expected.shape)
        assert max_level_difference(made, expected) <= 1
        shots = os.environ.get("REPORT_SCREENSHOT_DIR")
        if shots:
            png = screenshot(chromium, url, Path(shots) / "js-page.png", 900, budget_ms=20000)
            assert Image.open(io.BytesIO(png.read_bytes())).size == (1280, 900)
    finally:
        server.shutdown()
        server.server_close()
