"""Issue 22, class 4: hostile prepared folders. ``read_manifest``/``read_split`` are the one loader of
the file kind: every problem is one line naming the file and the field (before: KeyError, AttributeError
or ValueError tracebacks, and shard names that reached outside the folder)."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from eae.data.prepare import write_prepared
from eae.data.prepared import Split, read_manifest, read_split
from eae.errors import EAEError

pytestmark = pytest.mark.reliability


@pytest.fixture
def prepared(tmp_path):
    folder = tmp_path / "prepared"
    folder.mkdir()
    images = np.arange(6 * 4, dtype=np.uint8).reshape(6, 1, 2, 2)
    write_prepared(folder, {"train": Split(images, np.arange(6) % 3), "test": Split(images[:2], np.zeros(2))}, "x", 4)
    return folder


def edit_manifest(folder, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def refused(call) -> str:
    with pytest.raises(EAEError) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    "change, culprit",
    [
        (lambda m: m.pop("image_shape"), "'image_shape' must be [C, H, W] of positive integers, got None"),
        (lambda m: m.__setitem__("image_shape", [1, 2, "2"]), "'image_shape' must be [C, H, W] of positive integers"),
        (lambda m: m.pop("content_hash"), "'content_hash' must be a string, got None"),
        (lambda m: m.__setitem__("splits", []), "'splits' must be a non-empty object, got []"),
        (
            lambda m: m["splits"]["train"].__setitem__("count", -1),
            "'splits.train.count' must be a non-negative integer",
        ),
        (
            lambda m: m["splits"]["train"].__setitem__("shards", ["../../../etc/passwd.npy"]),
            "'splits.train.shards' must list .npy file names inside the folder",
        ),
        (
            lambda m: m["splits"]["test"].__setitem__("labels", "/tmp/labels.npy"),
            "'splits.test.labels' must be null or a .npy file name inside the folder",
        ),
    ],
)
def test_malformed_manifest_fields(prepared, change, culprit):
    edit_manifest(prepared, change)
    assert refused(lambda: read_split(prepared, "train")).startswith(f"{prepared / 'manifest.json'}: {culprit}")


def test_manifest_that_is_not_an_object_or_not_utf8(prepared):
    path = prepared / "manifest.json"
    path.write_text("[1, 2]")
    assert refused(lambda: read_manifest(prepared)) == f"{path}: expected a JSON object, got list"
    path.write_bytes(b'{"format": "\xff"}')
    assert refused(lambda: read_manifest(prepared)).startswith(f"corrupt {path}: 'utf-8' codec can't decode")


def test_manifest_fifo_does_not_block(prepared):
    (prepared / "manifest.json").unlink()
    os.mkfifo(prepared / "manifest.json")
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("e", refused(lambda: read_manifest(prepared))))
    thread.daemon = True
    thread.start()
    thread.join(10)
    assert result.get("e") == f"manifest {prepared / 'manifest.json'} is a FIFO (named pipe), not a regular file"


def test_shard_of_another_shape_count_or_dtype(prepared):
    np.save(prepared / "train-001.npy", np.zeros((2, 1, 3, 3), np.uint8))
    assert refused(lambda: read_split(prepared, "train")) == (
        f"{prepared / 'train-001.npy'}: uint8 [2, 1, 3, 3], but manifest.json says uint8 [n, 1, 2, 2]"
    )
    np.save(prepared / "train-001.npy", np.zeros((2, 1, 2, 2), np.float32))
    assert "float32 [2, 1, 2, 2]" in refused(lambda: read_split(prepared, "train"))
    np.save(prepared / "train-001.npy", np.zeros((1, 1, 2, 2), np.uint8))
    assert refused(lambda: read_split(prepared, "train")) == (
        f"{prepared}: split 'train' has 5 images in its shards, but manifest.json says 6"
    )


def test_labels_that_are_not_class_indices(prepared):
    np.save(prepared / "train-labels.npy", np.array([0, 1, 2, 0, 1, 10**12]))
    assert "labels range over 0..1000000000000, expected class indices 0..65535" in refused(
        lambda: read_split(prepared, "train")
    )
    np.save(prepared / "train-labels.npy", np.zeros(5, np.int64))
    assert "int64 [5], expected integers [6]" in refused(lambda: read_split(prepared, "train"))


def test_a_good_folder_still_reads(prepared):
    split = read_split(prepared, "train")
    assert split.images.shape == (6, 1, 2, 2) and split.labels.tolist() == [0, 1, 2, 0, 1, 2]
