"""The torch-free runtime (python -m eae.export.runtime): bad requests, a tampered model set and huge n."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from eae.errors import EAEError
from eae.export.card import sha256_file
from eae.export.runtime import Generator
from tests.helpers.workspace import assert_refused, fingerprint, module, run

pytestmark = pytest.mark.reliability


def sample(ws, *args: str):
    return module("eae.export.runtime", "sample", "models/generator.onnx", "--device", "cpu", *args, cwd=ws)


@pytest.mark.parametrize(
    "args, culprit",
    [
        # item 6: tracebacks before
        (["-n", "4", "--seed", "-1", "-o", "s.png"], r"seed must be between 0 and 2\*\*63 - 1, got -1"),
        # item 7: the model was overwritten with a PNG before
        (["-n", "4", "-o", "models/generator.onnx"], r"-o models/generator\.onnx would overwrite the model file"),
        (["-n", "4", "-o", "models/generator.json"], r"-o models/generator\.json would overwrite the model file"),
        (["-n", "4", "-o", "models/decoder.onnx"], r"-o models/decoder\.onnx would overwrite the model file"),
        (["-n", "4", "--npy", "models/decoder.onnx"], r"--npy models/decoder\.onnx would overwrite the model file"),
        (["-n", "4", "-o", "models/samples.onnx"], r"-o models/samples\.onnx: expected a \.png file name"),
        (["-n", "4", "--npy", "samples.png"], r"--npy samples\.png: expected a \.npy file name"),
        # item 3: no bound before
        (["-n", "10000001", "--npy", "s.npy"], r"number of images must be positive and at most 10,000,000"),
        (["-n", "4097", "-o", "s.png"], r"-o: a PNG grid holds at most 4096 images"),
        (["-n", "0", "-o", "s.png"], r"number of images must be positive"),  # handled before
    ],
)
def test_bad_request_is_refused_and_the_model_kept(workspace, args, culprit):
    before = fingerprint(workspace)
    assert_refused(sample(workspace, *args), 2, culprit)
    assert fingerprint(workspace) == before
    assert not (workspace / "s.png").exists() and not (workspace / "s.npy").exists()


def test_card_without_sha256_is_one_line(workspace):
    """Item 6: KeyError traceback before."""
    card = json.loads((workspace / "models/generator.json").read_text())
    del card["sha256"]
    (workspace / "models/generator.json").write_text(json.dumps(card))
    before = fingerprint(workspace)
    assert_refused(
        sample(workspace, "-n", "4", "-o", "s.png"),
        2,
        r"model card models/generator\.json pins no valid sha256 for generator\.onnx",
    )
    assert_refused(
        module("eae.export.runtime", "info", "models/generator.onnx", "--device", "cpu", cwd=workspace),
        2,
        r"pins no valid sha256",
    )
    assert fingerprint(workspace) == before


def test_decoder_of_another_export_is_refused(workspace, tmp_path):
    """The card pins the pair: a decoder.onnx that is not the one exported with generator.onnx is
    refused (already so when the card had the decoder's sha256; now also when it lacks it)."""
    model = onnx.load(str(workspace / "models/decoder.onnx"))
    weight = model.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(model, str(workspace / "models/decoder.onnx"))
    with pytest.raises(EAEError, match=r"decoder\.onnx: sha256 .* does not match its model card"):
        Generator(workspace / "models/generator.onnx").decode(np.zeros((1, 4), np.float32))
    card = json.loads((workspace / "models/generator.json").read_text())
    del card["decoder"]["sha256"]
    (workspace / "models/generator.json").write_text(json.dumps(card))
    with pytest.raises(EAEError, match=r"pins no valid sha256 for the decoder") as info:
        Generator(workspace / "models/generator.onnx").decode(np.zeros((1, 4), np.float32))
    assert "\n" not in str(info.value)


def test_generator_with_non_finite_output_is_refused(workspace):
    """Item 2, last line of defence: a NaN generator wrote all-black images with exit 0."""
    model = onnx.load(str(workspace / "models/generator.onnx"))
    for t in model.graph.initializer:
        if numpy_helper.to_array(t).dtype == np.float32 and numpy_helper.to_array(t).size > 1:
            t.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(t), np.nan), t.name))
    onnx.save(model, str(workspace / "models/generator.onnx"))
    card = json.loads((workspace / "models/generator.json").read_text())
    card["sha256"] = sha256_file(workspace / "models/generator.onnx")
    (workspace / "models/generator.json").write_text(json.dumps(card))
    assert_refused(sample(workspace, "-n", "4", "-o", "s.png"), 2, r"produced NaN or infinite pixels")
    assert not (workspace / "s.png").exists()


# Peak resident memory of this process image (VmHWM; ru_maxrss would carry the parent's peak over
# fork and exec).
MEASURE = """
import re, sys
from eae.export.cli import main
code = main(sys.argv[1:])
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024)  # MiB
sys.exit(code)
"""


def peak_mib(ws, n: int) -> int:
    proc = run(
        [
            sys.executable,
            "-c",
            MEASURE,
            "sample",
            "models/generator.onnx",
            "--device",
            "cpu",
            "-n",
            str(n),
            "--seed",
            "1",
            "--npy",
            f"s{n}.npy",
            "--chunk-size",
            "8192",
        ],
        ws,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_sample_streams_with_memory_flat_in_n(workspace):
    """Item 3: memory grew with n (~2.2 KB per image: 693 MB at n = 200,000); the .npy is now
    written chunk by chunk. Both runs use several chunks, so onnxruntime's arena is the same."""
    small, large = peak_mib(workspace, 30_000), peak_mib(workspace, 150_000)
    # 120,000 more 16x16 images are 31 MB as uint8; the old code held them twice (measured on c0021c7: +68 MB).
    assert large - small < 20, f"peak memory {small} MiB for 30,000 images but {large} MiB for 150,000"
    images = np.load(workspace / "s150000.npy", mmap_mode="r")
    assert images.shape == (150_000, 16, 16, 1) and images.dtype == np.uint8
    assert images[-8192:].any()  # the last chunk was written too


def test_streamed_npy_matches_sample(workspace):
    proc = sample(workspace, "-n", "700", "--seed", "3", "--npy", "s.npy", "-o", "s.png", "--chunk-size", "64")
    assert proc.returncode == 0, proc.stderr
    expected = Generator(workspace / "models/generator.onnx").sample(700, seed=3)
    np.testing.assert_array_equal(np.load(workspace / "s.npy"), expected)
    assert (workspace / "s.png").stat().st_size > 0


# --------------------------------------------------------------------------- issue 22, class 5: messages that name nothing


def test_disk_check_prints_sizes_in_the_unit_that_fits(tmp_path, monkeypatch):
    """Before: 'need 0.00 GB, only 0.00 GB free' for a small request on a nearly full disk."""
    import shutil
    from collections import namedtuple

    from eae.export.cli import write_npy_stream

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 100, 100))
    with pytest.raises(EAEError) as info:
        write_npy_stream(tmp_path / "s.npy", iter([]), 4, (16, 16, 1))
    assert str(info.value) == f"--npy {tmp_path / 's.npy'}: 4 images need 1.02 kB, only 100 B free on {tmp_path}"
    assert not list(tmp_path.iterdir())


def test_errno_lines_name_the_path(workspace):
    """Before: '[Errno 20] Not a directory' (or 'No space left on device') without the file."""
    (workspace / "afile").write_text("x")
    assert_refused(
        sample(workspace, "-n", "4", "--npy", "afile/s.npy"),
        2,
        r"^error: cannot write afile/s\.npy: afile: File exists",
    )
