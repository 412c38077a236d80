import pytest
import torch

from eae.errors import EAEError
from eae.models.networks import ArchConfig, Decoder, Encoder

SMALL = dict(image_shape=(1, 16, 16), latent_dim=4, encoder_channels=(8, 16), decoder_channels=(16, 8))


@pytest.mark.parametrize("k", [3, 4, 5])
def test_shapes_for_every_kernel_size(k):
    cfg = ArchConfig(**{**SMALL, "kernel_size": k})
    with torch.no_grad():
        z = Encoder(cfg)(torch.rand(6, 1, 16, 16))
        x_hat = Decoder(cfg)(z)
    assert z.shape == (6, 4)
    assert x_hat.shape == (6, 1, 16, 16)
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1


def test_encoder_output_size_can_differ_from_the_latent_size():
    assert Encoder(ArchConfig(**SMALL), out_features=8)(torch.rand(2, 1, 16, 16)).shape == (2, 8)


def test_paper_celeba_architecture_shapes():
    cfg = ArchConfig((3, 64, 64), 64, (128, 256, 512, 1024), (1024, 512, 256, 128), kernel_size=5, spectral_norm=True)
    assert cfg.decoder_start == 8
    assert Decoder(cfg)(torch.randn(2, 64)).shape == (2, 3, 64, 64)


def test_invalid_architecture_is_rejected():
    with pytest.raises(EAEError, match="divisible"):
        ArchConfig((1, 12, 12), 4, (8, 16, 32), (16, 8))
    with pytest.raises(EAEError, match="square"):
        ArchConfig((1, 16, 8), 4)


def test_baked_decoder_matches_spectral_norm_decoder():
    decoder = Decoder(ArchConfig(**SMALL, spectral_norm=True))
    decoder(torch.randn(8, 4))  # one power iteration in train mode
    decoder.eval()
    z = torch.randn(5, 4)
    plain = decoder.baked()
    assert not any("parametrizations" in k for k in plain.state_dict())
    torch.testing.assert_close(plain(z), decoder(z))


def test_config_round_trip():
    cfg = ArchConfig(**SMALL, kernel_size=3)
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
