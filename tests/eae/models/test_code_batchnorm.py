"""model.code_batchnorm: the EAE without its code BatchNorm (the paper's §1 ablation, claim 4), and the
default left exactly as it was (same parameters, same order, same random draws)."""

import pytest
import torch
from torch import nn

from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from eae.training.setup import arch_for

SMALL = dict(image_shape=(1, 16, 16), latent_dim=4, encoder_channels=(8, 16), decoder_channels=(16, 8))


def _built(seed: int, **arch):
    torch.manual_seed(seed)
    model = build_objective("eae", ArchConfig(**{**SMALL, **arch}), {"entropy_weight": 0.2})
    return model, torch.rand(3)  # the draw after building: the RNG use of the construction


def test_the_default_is_the_batchnormed_code_with_the_same_parameters_and_random_draws():
    assert ArchConfig(**SMALL).code_batchnorm is True
    default, after_default = _built(0)
    explicit, after_explicit = _built(0, code_batchnorm=True)
    assert isinstance(default.code_norm, nn.BatchNorm1d) and not default.code_norm.affine
    assert default.encoder.fc.bias is None
    assert list(default.state_dict()) == list(explicit.state_dict())
    for (k, a), b in zip(default.state_dict().items(), explicit.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert torch.equal(after_default, after_explicit)


def test_without_code_batchnorm_the_code_is_the_biased_linear_output_and_it_trains():
    model, _ = _built(0, code_batchnorm=False)
    assert isinstance(model.code_norm, nn.Identity) and model.encoder.fc.bias is not None
    assert not any(k.startswith("code_norm.") for k in model.state_dict())
    x = torch.rand(16, 1, 16, 16)
    assert torch.equal(model.encode(x), model.encoder(x))
    loss, stats = model.loss(x)
    loss.backward()
    assert torch.isfinite(loss) and set(stats) == {"loss", "recon", "entropy"}
    assert model.encoder.fc.bias.grad is not None


def test_arch_for_and_the_checkpoint_record_the_key(tmp_path):
    arch = arch_for(
        {"image_shape": [1, 16, 16]},
        latent_dim=4,
        encoder_channels=[8, 16],
        decoder_channels=[16, 8],
        kernel_size=4,
        code_batchnorm=False,
    )
    assert arch.code_batchnorm is False and arch.to_dict()["code_batchnorm"] is False
    model = build_objective("eae", arch, {"entropy_weight": 0.2})
    save_checkpoint(tmp_path / "nobn.pt", model, params={}, metrics={})
    loaded = model_from_checkpoint(load_checkpoint(tmp_path / "nobn.pt"))
    assert isinstance(loaded.code_norm, nn.Identity) and loaded.arch.code_batchnorm is False


def test_a_checkpoint_without_the_key_loads_as_batchnormed(tmp_path):
    model, _ = _built(0)
    save_checkpoint(tmp_path / "old.pt", model, params={}, metrics={})
    ckpt = torch.load(tmp_path / "old.pt", weights_only=True)
    del ckpt["arch"]["code_batchnorm"]  # as written before the key existed
    torch.save(ckpt, tmp_path / "old.pt")
    loaded = model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))
    assert loaded.arch.code_batchnorm is True and isinstance(loaded.code_norm, nn.BatchNorm1d)
    assert torch.equal(loaded.code_norm.running_var, model.code_norm.running_var)


def test_the_config_refuses_it_for_objectives_without_a_code_batchnorm():
    from pipelines.config.schema import Params

    assert Params.model_validate({"model": {"code_batchnorm": False}}).model.code_batchnorm is False
    with pytest.raises(ValueError, match="code_batchnorm"):
        Params.model_validate({"model": {"objective": "ae", "code_batchnorm": False}})
