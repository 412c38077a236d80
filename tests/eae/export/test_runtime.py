"""The torch-free ONNX runtime: determinism, dynamic batch, streaming, model card, bad inputs."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

import eae
from eae.errors import EAEError
from eae.export.card import sha256_file
from eae.export.cli import main
from eae.export.runtime import Generator, ShardedRun, draw_inputs
from eae.io import write_json
from tests.helpers.repos import ROOT

D = 3


@pytest.fixture
def models(tiny_generator):
    """The shared tiny exported generator + decoder + card, and the torch generator they came from."""
    return tiny_generator.folder, tiny_generator.torch_generator, tiny_generator.decoder


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter where `import torch` fails."""
    prelude = "import sys; sys.modules['torch'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=ROOT)


def test_runtime_works_with_torch_unimportable(models):
    out, _, _ = models
    proc = run_without_torch(f"""
import numpy as np
import eae, eae.export.runtime
from eae.export.runtime import Generator
g = Generator({str(out / "generator.onnx")!r})
a, b, c = g.sample(5, seed=1), g.sample(5, seed=1), g.sample(5, seed=2)
assert a.dtype == np.uint8 and a.shape == (5, 8, 8, 1)
assert (a == b).all() and not (a == c).all()
d = g.decode(np.zeros((2, {D}), np.float32))
assert d.shape == (2, 8, 8, 1)
print(g.providers)
""")
    assert proc.returncode == 0, proc.stderr
    assert "CPUExecutionProvider" in proc.stdout


def test_cli_without_torch(models, tmp_path):
    out, _, _ = models
    code = (
        "import runpy; sys.argv = ['eae.export.runtime', 'sample', {!r}, '-n', '10', '--seed', '3', '-o', {!r}, "
        "'--npy', {!r}]; runpy.run_module('eae.export.runtime', run_name='__main__')"
    ).format(str(out / "generator.onnx"), str(tmp_path / "s.png"), str(tmp_path / "s.npy"))
    proc = run_without_torch(code)
    assert proc.returncode == 0, proc.stderr
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (10, 8, 8, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, Generator(out / "generator.onnx").sample(10, seed=3))
    from PIL import Image

    assert Image.open(tmp_path / "s.png").size == (4 * 9 + 1, 3 * 9 + 1)  # 4 columns x 3 rows, 1 px padding


def test_samples_match_torch_on_the_same_inputs(models):
    out, torch_gen, _ = models
    noise, u = draw_inputs(50, D, seed=4)
    got = Generator(out / "generator.onnx").generate(noise, u)
    with torch.no_grad():
        expected = torch_gen(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_dynamic_batch_and_chunked_streaming(models, n):
    out, _, _ = models
    whole = Generator(out / "generator.onnx", chunk_size=4096).sample(n, seed=0)
    chunked = Generator(out / "generator.onnx", chunk_size=3)
    assert whole.shape == (n, 8, 8, 1)
    np.testing.assert_array_equal(chunked.sample(n, seed=0), whole)
    assert all(len(c) <= 3 for c in chunked.iter_samples(n, seed=0))


@pytest.mark.parametrize("n", [1, 31, 32, 100, 1000])
def test_batches_split_over_cores_give_the_images_of_one_run(models, n):
    """On CPU a batch of >= 2 x MIN_SHARD images runs as one single-threaded shard per core
    (ShardedRun): the same images, bit for bit, as one single-threaded run of the whole batch."""
    out, _, _ = models
    noise, u = draw_inputs(n, D, seed=5)
    one = Generator(out / "generator.onnx", threads=1)
    assert not isinstance(one._run, ShardedRun)
    expected = one.generate(noise, u)
    for workers in (2, 3):
        sharded = Generator(out / "generator.onnx", threads=workers)
        assert isinstance(sharded._run, ShardedRun)
        np.testing.assert_array_equal(sharded.generate(noise, u), expected)


def test_decoder_matches_torch(models):
    out, _, decoder = models
    z = np.random.default_rng(0).standard_normal((9, D)).astype(np.float32)
    with torch.no_grad():
        expected = np.clip(np.rint(decoder(torch.from_numpy(z)).numpy() * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(Generator(out / "generator.onnx").decode(z), expected.transpose(0, 2, 3, 1))


def test_graph_is_valid_self_contained_and_matches_reference_evaluator(models):
    out, _, _ = models
    model = onnx.load(str(out / "generator.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    noise, u = draw_inputs(7, D, seed=5)
    reference = ReferenceEvaluator(model).run(None, {"noise": noise, "u": u})[0]
    np.testing.assert_allclose(Generator(out / "generator.onnx").generate(noise, u), reference, atol=1e-5)


def test_card_pins_the_file(models, tmp_path):
    out, _, _ = models
    card = json.loads((out / "generator.json").read_text())
    assert card["sha256"] == sha256_file(out / "generator.onnx")
    assert [i["name"] for i in card["inputs"]] == ["noise", "u"] and card["outputs"][0]["shape"] == ["N", 1, 8, 8]
    assert card["evaluation"] == {"gmm": 1.0} and card["training"]["objective"]["weights"]["entropy_weight"] == 0.1
    # A modified file is refused.
    (tmp_path / "generator.onnx").write_bytes((out / "generator.onnx").read_bytes() + b"\0")
    (tmp_path / "generator.json").write_text((out / "generator.json").read_text())
    with pytest.raises(EAEError, match="does not match its model card"):
        Generator(tmp_path / "generator.onnx")
    # No card: refused unless verification is switched off.
    (tmp_path / "generator.json").unlink()
    (tmp_path / "generator.onnx").write_bytes((out / "generator.onnx").read_bytes())
    with pytest.raises(EAEError, match="no model card"):
        Generator(tmp_path / "generator.onnx")
    assert Generator(tmp_path / "generator.onnx", verify=False).card is None


def test_api_rejects_bad_inputs(models):
    out, _, _ = models
    g = Generator(out / "generator.onnx")
    with pytest.raises(EAEError, match=r"noise must have shape \[N, 3\]"):
        g.generate(np.zeros((2, 4), np.float32), np.zeros(2, np.float32))
    with pytest.raises(EAEError, match="u must have shape"):
        g.generate(np.zeros((2, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(EAEError, match="positive"):
        g.sample(0)


@pytest.mark.parametrize("case", ["missing", "corrupt", "not_generator", "zero", "negative"])
def test_cli_bad_input_one_line_exit_2(models, tmp_path, case, capsys):
    out, _, _ = models
    path = out / "generator.onnx"
    args = ["-n", "4"]
    if case == "missing":
        path = tmp_path / "nope.onnx"
    elif case == "corrupt":
        path = tmp_path / "generator.onnx"
        path.write_bytes(b"this is not onnx")
        write_json(
            tmp_path / "generator.json",
            {**json.loads((out / "generator.json").read_text()), "sha256": sha256_file(path)},
        )
    elif case == "not_generator":
        path = out / "decoder.onnx"
        args.append("--no-verify")
    else:
        args = ["-n", "0" if case == "zero" else "-5"]
    code = main(["sample", str(path), *args, "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "x.png").exists()


def test_info_prints_card_and_providers(models, capsys):
    out, _, _ = models
    assert main(["info", str(out / "generator.onnx")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["card"]["sha256"] == sha256_file(out / "generator.onnx")
    assert [i["name"] for i in info["inputs"]] == ["noise", "u"]
    # ONNX conventions: the ModelProto's own fields and the image metadata keys (onnx docs/MetadataProps.md)
    assert info["model"] == {
        "producer_name": "eae",
        "producer_version": eae.__version__,
        "model_version": 1,
        "doc_string": "fixture generator",
        "output_denotation": "IMAGE",
    }
    assert info["metadata"]["Image.BitmapPixelFormat"] == "Gray8"
    assert info["metadata"]["Image.NominalPixelRange"] == "Normalized_0_1"
    assert info["metadata"]["Image.ColorSpaceGamma"] == "SRGB"
