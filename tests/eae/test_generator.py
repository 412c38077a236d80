import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from eae.density import Mixture, fit_gmm
from eae.generator import Generator, MixtureSampler, export_onnx
from eae.runtime import draw_inputs
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
                       {"latent_dim": 3, "sampler": "gmm"})
    return gen, path, diff


def test_export_metadata_and_dynamic_batch(exported):
    _, path, diff = exported
    assert diff <= 1e-4
    model = onnx.load(str(path))
    assert {p.key: p.value for p in model.metadata_props} == {"latent_dim": "3", "sampler": "gmm"}
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
