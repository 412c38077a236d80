"""ONNX export of the generator: metadata, dynamic batch, parity, the z contract and ONNX's conventions."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import eae
from eae.export.onnx import export_onnx, image_metadata
from eae.export.runtime import draw_inputs, to_uint8_nhwc
from eae.models.networks import ArchConfig
from tests.helpers.generator import METADATA, normal_cdf

CFG = ArchConfig((1, 8, 8), 3, (8, 16), (16, 8))


@pytest.fixture
def exported(tiny_generator):
    return tiny_generator.torch_generator, tiny_generator.folder / "generator.onnx", tiny_generator.export_diff


def test_export_metadata_and_dynamic_batch(exported):
    _, path, diff = exported
    assert diff <= 1e-4
    model = onnx.load(str(path))
    assert {p.key: p.value for p in model.metadata_props} == {k: str(v) for k, v in METADATA.items()}
    assert [i.name for i in model.graph.input] == ["noise", "u"]
    assert [o.name for o in model.graph.output] == ["images"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("n", [1, 7, 64])
def test_onnx_parity_with_torch(exported, n):
    gen, path, _ = exported
    noise, u = draw_inputs(n, 3, seed=n)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["images"], {"noise": noise, "u": u})[0]
    with torch.no_grad():
        expected = gen(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
    assert got.shape == (n, 1, 8, 8)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_export_fails_when_parity_is_violated(tmp_path, exported):
    gen, _, _ = exported
    from eae.errors import EAEError

    with pytest.raises(EAEError, match="differ"):
        export_onnx(gen, (torch.randn(2, 3), torch.rand(2)), ["noise", "u"], tmp_path / "g.onnx", {}, atol=0.0)
    assert not (tmp_path / "g.onnx").exists()  # nothing half-written is left


@pytest.fixture
def exported_z(tiny_generator):
    return tiny_generator.folder / "generator_z.onnx", tiny_generator.z_diff


def test_generator_z_gives_the_same_images_as_generator_for_matching_draws(exported, exported_z):
    """z = [noise, Phi^-1(u)] -> exactly generator.onnx's images for (noise, u), as uint8 RGB."""
    _, path, _ = exported
    z_path, diff = exported_z
    assert diff <= 1.0
    rng = np.random.default_rng(5)
    z = rng.standard_normal((300, 4)).astype(np.float32)
    noise, u = z[:, :3], normal_cdf(z[:, 3]).astype(np.float32)
    images = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["images"], {"noise": noise, "u": u}
    )[0]
    session = ort.InferenceSession(str(z_path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [("z", "tensor(float)", 4)]
    pixels = session.run(["images"], {"z": z})[0]
    assert pixels.dtype == np.uint8 and pixels.shape == (300, 3, 8, 8)
    expected = to_uint8_nhwc(images).transpose(0, 3, 1, 2)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, channel : channel + 1], expected)


def test_onnx_conventions(exported, exported_z):
    """producer, model_version, doc_string, IMAGE denotation and the Image.* keys with values from
    onnx docs/MetadataProps.md."""
    allowed = {
        "Image.BitmapPixelFormat": {"Gray8", "Rgb8", "Bgr8", "Rgba8", "Bgra8"},
        "Image.ColorSpaceGamma": {"Linear", "SRGB"},
        "Image.NominalPixelRange": {"NominalRange_0_255", "Normalized_0_1", "Normalized_1_1", "NominalRange_16_235"},
    }
    (_, path, _), (z_path, _) = exported, exported_z
    expected = {path: ("Gray8", "Normalized_0_1", ""), z_path: ("Rgb8", "NominalRange_0_255", "fixture generator")}
    for file, (pixel_format, pixel_range, doc) in expected.items():
        model = onnx.load(str(file))
        meta = {p.key: p.value for p in model.metadata_props}
        assert {k: meta[k] for k in allowed} == {
            "Image.BitmapPixelFormat": pixel_format,
            "Image.ColorSpaceGamma": "SRGB",
            "Image.NominalPixelRange": pixel_range,
        }
        assert all(meta[k] in values for k, values in allowed.items())
        assert (model.producer_name, model.producer_version, model.model_version) == ("eae", eae.__version__, 1)
        assert model.doc_string.startswith(doc)
        output = model.graph.output[0].type
        assert output.denotation == "IMAGE"
        assert [d.denotation for d in output.tensor_type.shape.dim] == [
            "DATA_BATCH",
            "DATA_CHANNEL",
            "DATA_FEATURE",
            "DATA_FEATURE",
        ]
    z_meta = {p.key: p.value for p in onnx.load(str(z_path)).metadata_props}
    assert z_meta["image_shape"] == "[3, 8, 8]" and z_meta["inputs"].startswith("z float32 [N, 4]")


def test_image_metadata_rejects_other_channel_counts():
    from eae.errors import EAEError

    with pytest.raises(EAEError, match="2 channels"):
        image_metadata(2, uint8=False)


def test_torch_fidelity_loads_and_samples_generator_z(exported_z):
    """torch-fidelity's own input resolution (what `fidelity --input1 generator_z.onnx
    --input1-model-z-type normal --input1-model-z-size 4` builds) and its own sampling loop; the
    feature extractor is a weight-free stand-in, so no network is needed."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.generative_model_onnx import GenerativeModelONNX
    from torch_fidelity.utils import get_featuresdict_from_generative_model, prepare_input_from_id

    class Pixels(FeatureExtractorBase):
        """Features = the uint8 images flattened (checks dtype and shape like Inception's input check)."""

        @staticmethod
        def get_provided_features_list():
            return ("pixels",)

        def forward(self, x):
            assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3
            return (x.flatten(1).double(),)

    z_path, _ = exported_z
    model = prepare_input_from_id(
        1,
        input1=str(z_path),
        input1_model_z_type="normal",
        input1_model_z_size=4,
        input1_model_num_classes=0,
        input1_model_num_samples=50,
    )
    assert isinstance(model, GenerativeModelONNX) and (model.z_size, model.z_type) == (4, "normal")
    features = get_featuresdict_from_generative_model(
        model, Pixels("pixels", ["pixels"]), num_samples=50, batch_size=16, cuda=False, rng_seed=0, verbose=False
    )
    pixels = features["pixels"].view(50, 3, 8, 8)
    assert pixels.min() >= 0 and pixels.max() <= 255 and pixels.std() > 0
    # the same draws through generator_z.onnx directly (torch-fidelity draws numpy RandomState(seed).randn)
    z = np.random.RandomState(0).randn(16, 4).astype(np.float32)
    direct = ort.InferenceSession(str(z_path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
    np.testing.assert_array_equal(pixels[:16].numpy().astype(np.uint8), direct)


@pytest.mark.parametrize("sampler, tau", [("flow", 1.0), ("flow", 0.7), ("flow_gmm_base", 0.8), ("gmm", 0.5)])
def test_flow_and_tempered_generators_export_within_the_tolerance(tmp_path, sampler, tau):
    """The flow sampler (and a temperature, folded into the graph) exports with the same inputs
    (noise [N, d], u [N]) and onnxruntime matches torch within the export tolerance."""
    from eae.models.objectives.registry import build_objective
    from eae.sampling.flow import RealNVP
    from eae.sampling.generator import Generator
    from eae.sampling.mixture import fit_gmm
    from tests.helpers.flow import flow_density, randomised

    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    mixture = fit_gmm(np.random.default_rng(0).standard_normal((300, 3)) * [1, 2, 3], 4, seed=0)
    if sampler == "gmm":
        density = mixture
    else:
        flow = randomised(RealNVP(3, layers=4, hidden=16, components=4 if sampler == "flow_gmm_base" else 0))
        if sampler == "flow_gmm_base":
            flow.set_base(mixture)
        density = flow_density(flow.eval())
    gen = Generator(density, model.decoder, temperature=tau).eval()
    path = tmp_path / "generator.onnx"
    diff = export_onnx(gen, (torch.randn(2, 3), torch.rand(2)), ["noise", "u"], path, {"sampler": sampler})
    assert diff <= 1e-4
    exported = onnx.load(str(path))
    assert [i.name for i in exported.graph.input] == ["noise", "u"]
    noise, u = draw_inputs(64, 3, seed=9)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"noise": noise, "u": u})[0]
    with torch.no_grad():
        expected = gen(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
        untempered = Generator(density, model.decoder).eval()(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    if tau != 1.0:  # the temperature is inside the graph: the same inputs give other images
        assert np.abs(got - untempered).max() > 1e-2
