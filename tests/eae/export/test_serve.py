"""The HTTP endpoint: the images equal the runtime's, every bad request is a one-line 4xx, and the real
multi-worker server (eae-serve) answers on 127.0.0.1 and refuses a bad model before it starts."""

import io
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from eae.export.runtime import Generator, grid_png
from eae.export.serve import MAX_BODY, ServeSettings, create_app
from tests.helpers.processes import free_port, stop
from tests.helpers.repos import ROOT


@pytest.fixture(scope="module")
def client(tiny_generator):
    app = create_app(ServeSettings(str(tiny_generator.folder / "generator.onnx"), max_n=32))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def reference(tiny_generator):
    return Generator(tiny_generator.folder / "generator.onnx", threads=1)


def test_npy_and_png_are_the_runtimes_images(client, reference):
    r = client.post("/samples", json={"n": 7, "seed": 11})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
    images = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert images.dtype == np.uint8 and images.shape == (7, 8, 8, 1)
    np.testing.assert_array_equal(images, reference.sample(7, seed=11))
    assert r.headers["x-eae-seed"] == "11" and r.headers["x-eae-model-sha256"] == reference.card["sha256"]

    png = client.get("/samples.png", params={"n": 7, "seed": 11})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == grid_png(reference.sample(7, seed=11))
    grid = np.asarray(Image.open(io.BytesIO(png.content)))
    assert grid.shape == (3 * 9 + 1, 3 * 9 + 1, 3)  # 3 x 3 tiles of 8 px, 1 px borders
    posted = client.post("/samples", json={"n": 7, "seed": 11, "format": "png"})
    assert posted.content == png.content


def test_healthz_and_card(client, reference):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["sha256"] == reference.card["sha256"]
    assert health["noise_dim"] == 3 and health["image_shape"] == [1, 8, 8] and health["max_n"] == 32
    assert client.get("/card").json() == reference.card


@pytest.mark.parametrize(
    "method, path, payload, status, detail",
    [
        ("get", "/samples.png?n=0", None, 422, "n must be between 1 and 32 on this server (--max-n), got 0"),
        ("get", "/samples.png?n=33", None, 422, "n must be between 1 and 32 on this server (--max-n), got 33"),
        ("get", "/samples.png?seed=-1", None, 422, "seed must be between 0 and 2**63 - 1, got -1"),
        ("get", f"/samples.png?seed={2**63}", None, 422, "seed must be between 0 and 2**63 - 1"),
        ("get", "/samples.png?n=abc", None, 422, "query.n: Input should be a valid integer"),
        ("post", "/samples", {"n": 4, "bogus": 1}, 422, "bogus: Extra inputs are not permitted"),
        ("post", "/samples", {"n": "4"}, 422, "n: Input should be a valid integer"),
        ("post", "/samples", {"n": True}, 422, "n: Input should be a valid integer"),
        ("post", "/samples", {"n": 4.5}, 422, "n: Input should be a valid integer"),
        ("post", "/samples", {"format": "gif"}, 422, "format: Input should be 'npy' or 'png'"),
        ("post", "/samples", {"n": 10**9}, 422, "n must be between 1 and 32"),
        ("post", "/samples", b"{not json", 422, "Invalid JSON"),
        ("post", "/samples", b"[" * (MAX_BODY + 1), 413, f"request body larger than {MAX_BODY} bytes"),
        ("get", "/nowhere", None, 404, "Not Found"),
    ],
)
def test_bad_requests_are_one_line_4xx(client, method, path, payload, status, detail):
    if isinstance(payload, bytes):
        r = client.request(method, path, content=payload, headers={"content-type": "application/json"})
    else:
        r = client.request(method, path, json=payload)
    assert r.status_code == status, r.text
    message = r.json()["detail"]
    assert isinstance(message, str) and "\n" not in message and detail in message


def test_settings_are_bounded(tiny_generator):
    from eae.errors import EAEError

    with pytest.raises(EAEError, match="--max-n must be between 1 and 4096"):
        create_app(ServeSettings(str(tiny_generator.folder / "generator.onnx"), max_n=5000))


def test_card_404_without_verification(tiny_generator):
    app = create_app(ServeSettings(str(tiny_generator.folder / "generator.onnx"), verify=False))
    with TestClient(app) as c:
        r = c.get("/card")
    assert r.status_code == 404 and "--no-verify" in r.json()["detail"]


def test_the_real_server_two_workers(tiny_generator, reference, tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "eae.export.serve", str(tiny_generator.folder / "generator.onnx")]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url, pids, deadline = f"http://127.0.0.1:{port}", set(), time.monotonic() + 60
        while time.monotonic() < deadline and len(pids) < 2:
            try:
                pids.add(httpx.get(f"{url}/healthz", timeout=5).json()["pid"])
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.2)
        assert len(pids) == 2, f"expected answers from 2 worker processes, got {pids}"
        r = httpx.post(f"{url}/samples", json={"n": 5, "seed": 2}, timeout=30)
        np.testing.assert_array_equal(np.load(io.BytesIO(r.content)), reference.sample(5, seed=2))
    finally:
        stop(proc)


def test_a_bad_model_stops_before_serving(tmp_path):
    bad = tmp_path / "generator.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "eae.export.serve", str(bad), "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no model card {tmp_path / 'generator.json'} beside generator.onnx "
        "(pass verify=False / --no-verify to load an unverified model)"
    ]
