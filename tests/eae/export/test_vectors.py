"""Test vectors for ports: the inputs are draw_inputs' bit for bit after a JSON round trip, the images are
the runtime's, and the export stage writes them beside the generator."""

import json

import numpy as np
import pytest

from eae.errors import EAEError
from eae.export.card import sha256_file
from eae.export.runtime import Generator, draw_inputs
from eae.export.vectors import FORMAT, make_test_vectors, max_level_difference, read_test_vectors
from eae.io import write_json


def test_vectors_round_trip_bit_for_bit(tiny_generator, tmp_path):
    model = tiny_generator.folder / "generator.onnx"
    write_json(tmp_path / "v.json", make_test_vectors(model, 5, seed=7))
    record, noise, u, images = read_test_vectors(tmp_path / "v.json")
    expected_noise, expected_u = draw_inputs(5, 3, 7)
    assert noise.tobytes() == expected_noise.tobytes() and u.tobytes() == expected_u.tobytes()  # float32 exact
    np.testing.assert_array_equal(images, Generator(model).sample(5, seed=7))  # the same draws as sample()
    assert images.shape == (5, 8, 8, 1) and images.dtype == np.uint8
    assert record["format"] == FORMAT and record["generator_sha256"] == sha256_file(model)
    assert record["noise_dim"] == 3 and record["image_shape"] == [1, 8, 8] and record["tolerance"] == 1


def test_level_difference_and_bad_files(tmp_path):
    a = np.array([[0, 255], [10, 20]], np.uint8)
    assert max_level_difference(a, a) == 0
    assert max_level_difference(a, np.array([[1, 253], [10, 20]], np.uint8)) == 2
    with pytest.raises(EAEError, match="shape"):
        max_level_difference(a, a[:1])
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(EAEError, match="not an EAE test-vector file"):
        read_test_vectors(tmp_path / "x.json")
    with pytest.raises(EAEError, match="cannot read test vectors"):
        read_test_vectors(tmp_path / "missing.json")


def test_export_stage_writes_them(exported):
    record, noise, u, images = read_test_vectors(exported / "models/test_vectors.json")
    assert record["n"] == 8 and record["seed"] == 0  # export.test_vectors and seed of params.yaml
    assert record["generator_sha256"] == sha256_file(exported / "models/generator.onnx")
    gen = Generator(exported / "models/generator.onnx")
    assert record["noise_dim"] == gen.noise_dim and record["image_shape"] == list(gen.image_shape)
    assert max_level_difference(images, gen.sample(8, seed=0)) == 0
