import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from eae.density import Mixture, fit_gmm
import eae
from eae.generator import (Generator, MixtureSampler, ZGenerator, export_onnx, export_z_onnx, image_metadata,
                           standard_normal_cdf)
from eae.runtime import draw_inputs, to_uint8_nhwc
from eae.networks import ArchConfig
from eae.objectives import build_objective

CFG = ArchConfig((1, 8, 8), 3, (8, 16), (16, 8))


def test_sampler_picks_components_by_u():
    mix = Mixture(np.array([0.2, 0.5, 0.3]), np.array([[0.0, 0], [10, 0], [0, 10]]), np.stack([np.eye(2)] * 3))
    sampler = MixtureSampler(mix)
    u = torch.tensor([0.0, 0.19, 0.2, 0.69, 0.7, 0.999])
    z = sampler(torch.zeros(6, 2), u)
    expected = torch.tensor([[0.0, 0], [0, 0], [10, 0], [10, 0], [0, 10], [0, 10]])
    torch.testing.assert_close(z, expected)


def test_sampler_reproduces_mixture_statistics():
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    mix = Mixture(np.array([0.25, 0.75]), np.array([[-10.0, 0.0], [10.0, 1.0]]), np.stack([cov, 0.5 * cov]))
    noise, u = draw_inputs(200_000, 2, seed=1)
    z = MixtureSampler(mix)(torch.from_numpy(noise), torch.from_numpy(u)).numpy()
    left = z[:, 0] < 0
    assert left.mean() == pytest.approx(0.25, abs=0.01)
    np.testing.assert_allclose(np.cov(z[left].T), cov, atol=0.05)
    np.testing.assert_allclose(np.cov(z[~left].T), 0.5 * cov, atol=0.03)
    np.testing.assert_allclose(z[~left].mean(0), [10.0, 1.0], atol=0.02)


def test_draw_inputs_is_pcg64_from_seed():
    noise, u = draw_inputs(4, 3, seed=7)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(noise, rng.standard_normal((4, 3), dtype=np.float32))
    np.testing.assert_array_equal(u, rng.random(4, dtype=np.float32))
    assert noise.dtype == u.dtype == np.float32 and (u >= 0).all() and (u < 1).all()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1, "spectral_norm": True})
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    mix = fit_gmm(np.random.default_rng(0).standard_normal((300, 3)), 4, seed=0)
    gen = Generator(mix, model.decoder).eval()
    path = tmp_path_factory.mktemp("onnx") / "generator.onnx"
    diff = export_onnx(gen, (torch.randn(2, 3), torch.rand(2)), ["noise", "u"], path,
                       {"latent_dim": 3, "sampler": "gmm", **image_metadata(1, uint8=False)})
    return gen, path, diff


def test_export_metadata_and_dynamic_batch(exported):
    _, path, diff = exported
    assert diff <= 1e-4
    model = onnx.load(str(path))
    assert {p.key: p.value for p in model.metadata_props} == {"latent_dim": "3", "sampler": "gmm",
                                                             **image_metadata(1, uint8=False)}
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


# --- torch-fidelity's contract (ZGenerator, generator_z.onnx) and the ONNX conventions -------------------


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) in float64 (scipy's ndtr), the reference for the graph's erf-based CDF."""
    from scipy.special import ndtr

    return ndtr(np.asarray(x, np.float64))


def test_standard_normal_cdf_known_values():
    x = torch.tensor([-np.inf, -1.959964, -1.0, 0.0, 1.0, 1.959964, np.inf])
    expected = torch.tensor([0.0, 0.025, 0.158655254, 0.5, 0.841344746, 0.975, 1.0])
    torch.testing.assert_close(standard_normal_cdf(x), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(standard_normal_cdf(torch.linspace(-6, 6, 101)),
                               torch.from_numpy(normal_cdf(np.linspace(-6, 6, 101))).float(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_z_generator_quantises_like_the_runtime_and_outputs_rgb(channels):
    torch.manual_seed(0)
    model = build_objective("eae", ArchConfig((channels, 8, 8), 3, (8, 16), (16, 8)), {"entropy_weight": 0.1})
    model(torch.rand(16, channels, 8, 8))
    model.eval()
    gen = Generator(fit_gmm(np.random.default_rng(0).standard_normal((300, 3)), 4, seed=0), model.decoder).eval()
    z = torch.from_numpy(np.random.default_rng(1).standard_normal((32, 4)).astype(np.float32))
    with torch.no_grad():
        pixels = ZGenerator(gen)(z).numpy()
        u = torch.from_numpy(normal_cdf(z[:, -1].numpy()).astype(np.float32))
        expected = to_uint8_nhwc(gen(z[:, :-1], u).numpy()).transpose(0, 3, 1, 2)
    assert pixels.dtype == np.uint8 and pixels.shape == (32, 3, 8, 8)
    np.testing.assert_array_equal(pixels, np.broadcast_to(expected, pixels.shape))


@pytest.fixture(scope="module")
def exported_z(exported, tmp_path_factory):
    gen, _, _ = exported
    path = tmp_path_factory.mktemp("onnx_z") / "generator_z.onnx"
    meta = {"latent_dim": 3, "noise_dim": 3, "image_shape": "[1, 8, 8]", "sampler": "gmm",
            "inputs": "noise, u", "outputs": "images", **image_metadata(1, uint8=False)}
    diff = export_z_onnx(gen, path, meta, about="fixture generator")
    return path, diff


def test_generator_z_gives_the_same_images_as_generator_for_matching_draws(exported, exported_z):
    """z = [noise, Phi^-1(u)] -> exactly generator.onnx's images for (noise, u), as uint8 RGB."""
    _, path, _ = exported
    z_path, diff = exported_z
    assert diff <= 1.0
    rng = np.random.default_rng(5)
    z = rng.standard_normal((300, 4)).astype(np.float32)
    noise, u = z[:, :3], normal_cdf(z[:, 3]).astype(np.float32)
    images = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["images"], {"noise": noise, "u": u})[0]
    session = ort.InferenceSession(str(z_path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [("z", "tensor(float)", 4)]
    pixels = session.run(["images"], {"z": z})[0]
    assert pixels.dtype == np.uint8 and pixels.shape == (300, 3, 8, 8)
    expected = to_uint8_nhwc(images).transpose(0, 3, 1, 2)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, channel:channel + 1], expected)


def test_onnx_conventions(exported, exported_z):
    """producer, model_version, doc_string, IMAGE denotation and the Image.* keys with values from
    onnx docs/MetadataProps.md."""
    allowed = {"Image.BitmapPixelFormat": {"Gray8", "Rgb8", "Bgr8", "Rgba8", "Bgra8"},
               "Image.ColorSpaceGamma": {"Linear", "SRGB"},
               "Image.NominalPixelRange": {"NominalRange_0_255", "Normalized_0_1", "Normalized_1_1",
                                           "NominalRange_16_235"}}
    (_, path, _), (z_path, _) = exported, exported_z
    expected = {path: ("Gray8", "Normalized_0_1", ""), z_path: ("Rgb8", "NominalRange_0_255", "fixture generator")}
    for file, (pixel_format, pixel_range, doc) in expected.items():
        model = onnx.load(str(file))
        meta = {p.key: p.value for p in model.metadata_props}
        assert {k: meta[k] for k in allowed} == {"Image.BitmapPixelFormat": pixel_format,
                                                "Image.ColorSpaceGamma": "SRGB",
                                                "Image.NominalPixelRange": pixel_range}
        assert all(meta[k] in values for k, values in allowed.items())
        assert (model.producer_name, model.producer_version, model.model_version) == ("eae", eae.__version__, 1)
        assert model.doc_string.startswith(doc)
        output = model.graph.output[0].type
        assert output.denotation == "IMAGE"
        assert [d.denotation for d in output.tensor_type.shape.dim] == ["DATA_BATCH", "DATA_CHANNEL",
                                                                        "DATA_FEATURE", "DATA_FEATURE"]
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
    model = prepare_input_from_id(1, input1=str(z_path), input1_model_z_type="normal", input1_model_z_size=4,
                                  input1_model_num_classes=0, input1_model_num_samples=50)
    assert isinstance(model, GenerativeModelONNX) and (model.z_size, model.z_type) == (4, "normal")
    features = get_featuresdict_from_generative_model(model, Pixels("pixels", ["pixels"]), num_samples=50,
                                                      batch_size=16, cuda=False, rng_seed=0, verbose=False)
    pixels = features["pixels"].view(50, 3, 8, 8)
    assert pixels.min() >= 0 and pixels.max() <= 255 and pixels.std() > 0
    # the same draws through generator_z.onnx directly (torch-fidelity draws numpy RandomState(seed).randn)
    z = np.random.RandomState(0).randn(16, 4).astype(np.float32)
    direct = ort.InferenceSession(str(z_path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
    np.testing.assert_array_equal(pixels[:16].numpy().astype(np.uint8), direct)


def test_z_generator_of_the_two_stage_sampler_has_its_noise_size_and_ignores_the_last_column():
    from eae.density import SecondStage
    from eae.objectives.vae import SecondStageVAE

    torch.manual_seed(0)
    model = build_objective("eae", CFG, {"entropy_weight": 0.1})  # latent_dim 3
    model(torch.rand(16, 1, 8, 8))
    model.eval()
    second = SecondStageVAE(3, 5, 8, 1)  # noise size 5 != latent size 3
    stage = SecondStage(second.config, {k: v.detach().numpy() for k, v in second.state_dict().items()})
    z_gen = ZGenerator(Generator(stage, model.decoder).eval())
    assert z_gen.z_size == 6
    z = torch.randn(8, 6)
    other = torch.cat([z[:, :5], torch.randn(8, 1)], dim=1)
    with torch.no_grad():
        assert torch.equal(z_gen(z), z_gen(other)) and z_gen(z).shape == (8, 3, 8, 8)
