import pytest
import torch

from eae.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from eae.errors import EAEError
from eae.model import EAE, EAEConfig

SMALL = dict(image_shape=(1, 16, 16), latent_dim=4, encoder_channels=(8, 16), decoder_channels=(16, 8))


@pytest.mark.parametrize("k", [3, 4, 5])
def test_shapes_for_every_kernel_size(k):
    model = EAE(EAEConfig(**{**SMALL, "kernel_size": k}))
    with torch.no_grad():
        z, x_hat = model(torch.rand(6, 1, 16, 16))
    assert z.shape == (6, 4)
    assert x_hat.shape == (6, 1, 16, 16)
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1


def test_paper_celeba_architecture_shapes():
    cfg = EAEConfig((3, 64, 64), 64, (128, 256, 512, 1024), (1024, 512, 256, 128), kernel_size=5, spectral_norm=True)
    model = EAE(cfg)
    assert cfg.decoder_start == 8
    assert model.decoder(torch.randn(2, 64)).shape == (2, 3, 64, 64)


def test_code_is_batch_normalised_without_affine():
    model = EAE(EAEConfig(**SMALL)).train()
    z, _ = model(torch.rand(64, 1, 16, 16))
    assert model.encoder.code_norm.affine is False
    torch.testing.assert_close(z.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_invalid_architecture_is_rejected():
    with pytest.raises(EAEError, match="divisible"):
        EAEConfig((1, 12, 12), 4, (8, 16, 32), (16, 8))
    with pytest.raises(EAEError, match="square"):
        EAEConfig((1, 16, 8), 4)


def test_baked_decoder_matches_spectral_norm_decoder():
    model = EAE(EAEConfig(**SMALL, spectral_norm=True))
    model(torch.rand(8, 1, 16, 16))  # one power iteration in train mode
    model.eval()
    z = torch.randn(5, 4)
    plain = model.decoder.baked()
    assert not any("parametrizations" in k for k in plain.state_dict())
    torch.testing.assert_close(plain(z), model.decoder(z))


def test_checkpoint_round_trip_weights_only(tmp_path):
    model = EAE(EAEConfig(**SMALL, spectral_norm=True))
    model(torch.rand(8, 1, 16, 16))
    save_checkpoint(tmp_path / "m.pt", model, params={"seed": 1}, metrics={"loss": 1.5, "history": {"loss": [2.0]}},
                    extra={"dataset": "digits"})
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["params"] == {"seed": 1} and ckpt["dataset"] == "digits"
    back = model_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(back(x)[1], model.eval()(x)[1])


def test_checkpoint_errors(tmp_path):
    with pytest.raises(EAEError, match="missing"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(EAEError, match="cannot load"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(EAEError, match="not an EAE checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
