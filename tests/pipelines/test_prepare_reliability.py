"""The prepare stage on hostile image folders, split files and kills."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import psutil
import pytest
import yaml
from PIL import Image

from tests.helpers.workspace import alive, assert_refused, env, fingerprint, hidden_temporaries, module, tiny_params

pytestmark = pytest.mark.reliability

PREPARED = ("data/prepared",)


def png(size=(24, 20), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def huge_png(side: int = 13000) -> bytes:
    """A valid side x side black-and-white PNG: 1 bit per pixel, compressed to a few kB (decoded as
    RGB it takes 3 bytes per pixel: 507 MB at 13000 x 13000)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    pixels = zlib.compressobj(9)
    body = b"".join(pixels.compress(row) for _ in range(side)) + pixels.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


def folder_workspace(ws, files: dict[str, bytes], **data) -> None:
    """Point the workspace at a folder source under data/raw/imgs holding ``files``."""
    root = ws / "data/raw/imgs"
    root.mkdir(parents=True)
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    params = tiny_params(data={"source": "folder", "root": "data/raw/imgs", **data})
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


GOOD = {f"img{i:02d}.png": png(seed=i) for i in range(10)}


@pytest.mark.parametrize("entry", ["/etc/hostname", "../outside.png", "sub/../../outside.png"])
def test_split_file_paths_outside_data_root_are_refused(workspace, entry):
    """Item 7: absolute and '..' paths of a split file were read."""
    (workspace / "data/raw").mkdir(parents=True)
    (workspace / "data/raw/outside.png").write_bytes(png())
    lines = [f"{name} {'test' if i < 3 else 'train'}" for i, name in enumerate(GOOD)] + [f"{entry} train"]
    folder_workspace(workspace, {**GOOD, "split.txt": "\n".join(lines).encode()}, split_file="data/raw/imgs/split.txt")
    before = fingerprint(workspace, PREPARED)
    assert_refused(
        module("pipelines.prepare", cwd=workspace),
        1,
        rf"split\.txt:11: {entry.replace('.', '[.]')} is outside data\.root",
    )
    assert fingerprint(workspace, PREPARED) == before


def test_huge_image_is_a_bad_image_refused_before_decoding(workspace):
    """Item 7: a 13000x13000 image was decoded (to 0.5-1.4 GB) with only a warning."""
    folder_workspace(workspace, {**GOOD, "huge.png": huge_png()}, on_bad_image="fail")
    before = fingerprint(workspace, PREPARED)
    assert_refused(
        module("pipelines.prepare", cwd=workspace),
        1,
        r"cannot read image .*huge\.png \(ValueError: 13000x13000 = 169,000,000 pixels exceeds the limit "
        r"of 89,478,485 pixels \(not decoded\)\); set data\.on_bad_image: skip",
    )
    assert fingerprint(workspace, PREPARED) == before

    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["data"]["on_bad_image"] = "skip"
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = module("pipelines.prepare", cwd=workspace)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DecompressionBomb" not in proc.stderr and "exceeds the limit" in proc.stderr
    manifest = json.loads((workspace / "data/prepared/manifest.json").read_text())
    assert manifest["bad_images"] == {"count": 1, "files": ["huge.png"]}
    assert sum(s["count"] for s in manifest["splits"].values()) == len(GOOD)


def test_corrupt_image_is_skipped_and_listed(workspace):
    """Handled before the probe."""
    folder_workspace(workspace, {**GOOD, "broken.png": png()[:60]})
    proc = module("pipelines.prepare", cwd=workspace)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((workspace / "data/prepared/manifest.json").read_text())["bad_images"]["files"] == ["broken.png"]


def test_missing_celeba_partition_file_is_one_line(workspace):
    """Handled before the probe."""
    (workspace / "data/raw/celeba/img_align_celeba").mkdir(parents=True)
    params = tiny_params(data={"source": "celeba", "root": "data/raw/celeba", "image_size": 16})
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = fingerprint(workspace, PREPARED)
    assert_refused(module("pipelines.prepare", cwd=workspace), 1, r"missing .*list_eval_partition\.txt")
    assert fingerprint(workspace, PREPARED) == before


def test_crafted_cifar_pickle_is_never_executed(workspace):
    """Handled before the probe: a CIFAR batch that would run code when unpickled is refused."""

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {workspace / 'pwned'}",))

    folder = workspace / "data/raw/cifar/cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(Exploit()))
    params = tiny_params(data={"source": "cifar10", "root": "data/raw/cifar", "image_size": 32})
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = fingerprint(workspace, PREPARED)
    assert_refused(module("pipelines.prepare", cwd=workspace), 1, r"global posix\.system is not allowed")
    assert not (workspace / "pwned").exists()
    assert fingerprint(workspace, PREPARED) == before


def test_stale_temporaries_of_killed_writers_are_cleaned(workspace):
    """Item 5: data/.prepared.* folders of killed runs piled up. Temporaries carry their writer's pid;
    the next prepare removes those whose writer is gone (and never one of a live writer)."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = [workspace / f"data/.prepared.{dead}.abc123", workspace / f"data/.prepared.{dead}.old"]
    live = workspace / f"data/.prepared.{os.getppid()}.xyz789"
    for d in (*stale, live):
        d.mkdir()
        (d / "train-000.npy").write_bytes(b"half")
    assert module("pipelines.prepare", cwd=workspace).returncode == 0
    assert not any(d.exists() for d in stale) and live.exists()


@pytest.mark.slow
def test_kill_9_of_prepare_leaves_no_orphan_workers(workspace):
    """Item 5: with data.workers=2, kill -9 of prepare left its decoding workers (and the
    multiprocessing resource tracker) running under PID 1. The workers now die with it; the last
    good data/prepared stays, and the next run removes the killed run's temporary folder."""
    yy, xx = np.mgrid[0:768, 0:768]
    buf = io.BytesIO()  # a smooth 768x768 JPEG (small file, a few ms to decode and resize)
    Image.fromarray(np.stack([xx // 3, yy // 3, (xx + yy) // 6], -1).astype(np.uint8)).save(buf, "JPEG", quality=90)
    folder_workspace(workspace, {f"{i:04d}.jpg": buf.getvalue() for i in range(2000)}, workers=2)
    before = fingerprint(workspace, PREPARED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.prepare"],
        cwd=workspace,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    children: list[psutil.Process] = []
    while time.monotonic() < deadline and len(children) < 3:  # 2 workers + the resource tracker
        children = parent.children(recursive=True)
        time.sleep(0.2)
    assert len(children) >= 3, f"workers did not start: {children}"
    time.sleep(2.0)  # decoding is under way
    assert proc.poll() is None, "prepare finished before it could be killed: make the fixture larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(c.pid) for c in children):
        time.sleep(0.2)
    assert not [c.pid for c in children if alive(c.pid)], "orphaned children of the killed prepare"
    assert fingerprint(workspace, PREPARED) == before
    assert any(name.startswith(".prepared.") for name in hidden_temporaries(workspace / "data"))

    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["data"]["root"] = "data/raw/few"
    (workspace / "data/raw/few").mkdir()
    for name in list(GOOD):
        (workspace / "data/raw/few" / name).write_bytes(GOOD[name])
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert module("pipelines.prepare", cwd=workspace).returncode == 0
    assert hidden_temporaries(workspace / "data") == []
