import json
import tracemalloc

import numpy as np
import pytest

from eae.data.decode import resize, to_uint8
from eae.data.prepare import write_prepared
from eae.data.prepared import Split, read_manifest, read_split, split_shards
from eae.data.sources import load_source
from eae.data.sources.common import seeded_split
from eae.errors import EAEError, MissingArtifact
from pipelines._stage import error_line


def test_digits_source_shapes_split_and_range():
    splits = load_source("digits", image_size=16, test_fraction=0.2, seed=0)
    train, test = splits["train"], splits["test"]
    assert len(train.images) + len(test.images) == 1797
    assert len(test.images) == 359
    assert train.images.shape[1:] == (1, 16, 16) and train.images.dtype == np.uint8
    assert train.images.max() == 255 and train.images.min() == 0
    assert set(np.unique(train.labels)) == set(range(10))


def test_digits_split_is_seeded():
    a = load_source("digits", image_size=8, test_fraction=0.2, seed=0)["test"].labels
    b = load_source("digits", image_size=8, test_fraction=0.2, seed=0)["test"].labels
    c = load_source("digits", image_size=8, test_fraction=0.2, seed=1)["test"].labels
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_native_size_keeps_pixels_exact():
    from sklearn.datasets import load_digits

    images = load_source("digits", image_size=8, test_fraction=0.5, seed=0)
    all_images = np.concatenate([images["train"].images, images["test"].images])
    expected = to_uint8(load_digits().images / 16.0)
    assert sorted(map(bytes, all_images[:, 0])) == sorted(map(bytes, expected))


def test_resize_and_split_helpers():
    x = np.zeros((2, 1, 8, 8))
    x[:, :, 2:6, 2:6] = 1.0
    y = resize(x, 16)
    assert y.shape == (2, 1, 16, 16) and 0 <= y.min() and y.max() <= 1
    train, test = seeded_split(10, 0.3, seed=0)
    assert len(test) == 3 and not set(train) & set(test)
    with pytest.raises(EAEError):
        seeded_split(3, 0.01, seed=0)


def test_unknown_source():
    with pytest.raises(EAEError, match="unknown data source"):
        load_source("imagenet")


def test_prepared_round_trip_with_shards(tmp_path):
    rng = np.random.default_rng(0)
    splits = {
        "train": Split(rng.integers(0, 256, (25, 3, 4, 4), dtype=np.uint8), np.arange(25)),
        "test": Split(rng.integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)),
    }
    manifest = write_prepared(tmp_path, splits, "fixture", shard_size=10)
    assert manifest["image_shape"] == [3, 4, 4]
    assert manifest["splits"]["train"]["shards"] == ["train-000.npy", "train-001.npy", "train-002.npy"]
    assert manifest["splits"]["train"]["count"] == 25
    assert manifest["content_hash"].startswith("sha256:")
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    back = read_split(tmp_path, "train")
    np.testing.assert_array_equal(back.images, splits["train"].images)
    np.testing.assert_array_equal(back.labels, np.arange(25))
    assert read_split(tmp_path, "test").labels is None
    assert write_prepared(tmp_path, splits, "fixture", 10)["content_hash"] == manifest["content_hash"]


def test_prepared_errors(tmp_path):
    with pytest.raises(MissingArtifact, match=r"^missing .*manifest\.json$") as info:
        read_manifest(tmp_path)
    assert info.value.artifact == "prepared"
    assert error_line(info.value).endswith(": run the prepare stage first (dvc repro prepare)")
    write_prepared(tmp_path, {"train": Split(np.zeros((4, 1, 2, 2), np.uint8))}, "x", 10)
    with pytest.raises(EAEError, match="no split"):
        read_split(tmp_path, "test")
    (tmp_path / "train-000.npy").write_bytes(b"corrupt")
    with pytest.raises(EAEError, match="cannot read"):
        read_split(tmp_path, "train")
    (tmp_path / "manifest.json").write_text("{oops")
    with pytest.raises(EAEError, match="corrupt"):
        read_manifest(tmp_path)


def test_split_shards_stream_the_split_and_read_split_holds_it_once(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (50, 3, 64, 64), dtype=np.uint8)  # 614 kB
    write_prepared(tmp_path, {"train": Split(images)}, "fixture", shard_size=5)
    shards = list(split_shards(tmp_path, "train"))
    assert [len(s) for s in shards] == [5] * 10
    np.testing.assert_array_equal(np.concatenate(shards), images)
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        back = read_split(tmp_path, "train").images
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(back, images)
    assert peak < images.nbytes * 1.3  # the split plus a shard or two (concatenating the shards: twice the split)


def test_split_shards_refuse_shards_that_do_not_match_the_manifest(tmp_path):
    write_prepared(tmp_path, {"train": Split(np.zeros((25, 1, 2, 2), np.uint8))}, "x", 10)
    np.save(tmp_path / "train-001.npy", np.zeros((10, 1, 3, 3), np.uint8))
    with pytest.raises(EAEError, match=r"train-001.npy: uint8 \[10, 1, 3, 3\], but manifest.json says"):
        read_split(tmp_path, "train")
    np.save(tmp_path / "train-001.npy", np.zeros((9, 1, 2, 2), np.uint8))
    with pytest.raises(EAEError, match="24 images in its shards"):
        list(split_shards(tmp_path, "train"))
