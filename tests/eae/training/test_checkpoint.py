import pytest
import torch

from eae.errors import EAEError
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.training.checkpoint import FORMAT_V1, load_checkpoint, model_from_checkpoint, save_checkpoint

SMALL = ArchConfig(image_shape=(1, 16, 16), latent_dim=4, encoder_channels=(8, 16), decoder_channels=(16, 8))


def test_round_trip_weights_only(tmp_path):
    model = build_objective("eae", SMALL, {"entropy_weight": 0.3, "spectral_norm": True})
    model(torch.rand(8, 1, 16, 16))
    save_checkpoint(
        tmp_path / "m.pt",
        model,
        params={"seed": 1},
        metrics={"loss": 1.5, "history": {"loss": [2.0]}},
        extra={"dataset": "digits"},
    )
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["params"] == {"seed": 1} and ckpt["dataset"] == "digits"
    assert ckpt["objective"] == {
        "name": "eae",
        "weights": {
            "entropy_weight": 0.3,
            "entropy_k": 1,
            "decoder_l2": 0.0,
            "spectral_norm": True,
            "entropy_start_weight": None,
            "entropy_ramp_epochs": 0,
            "entropy_queue": 0,
        },
    }
    back = model_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    assert back.arch.spectral_norm
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(back(x)[1], model.eval()(x)[1])


def test_checkpoints_recording_fewer_weights_load_with_the_defaults(tmp_path):
    """Format-2 checkpoints written before the weights models (the EAE without its schedule keys, the
    two-stage VAE without its second stage) load as they were trained."""
    for name, weights in [
        ("eae", {"entropy_weight": 0.3, "entropy_k": 1, "decoder_l2": 0.0, "spectral_norm": False}),
        ("two_stage_vae", {}),
    ]:
        model = build_objective(name, SMALL, weights)
        save_checkpoint(tmp_path / "m.pt", model, params={}, metrics={})
        ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
        ckpt["objective"]["weights"] = weights
        torch.save(ckpt, tmp_path / "old.pt")
        back = model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))
        assert back.describe() == model.describe()


def test_eae_checkpoints_with_an_encoder_bias_load_with_it_folded_into_the_code_norm(tmp_path):
    """Before the EAE's encoder lost the bias its code BatchNorm subtracts: the bias moves into the
    running mean and the eval-mode codes and images stay the same (<= 1e-6)."""
    from eae.models.objectives.eae import EAE

    class OldEAE(EAE):  # the layout those checkpoints have
        code_is_batch_normalised = False

    torch.manual_seed(0)
    old = OldEAE(SMALL, entropy_weight=0.2)
    with torch.no_grad():
        old.encoder.fc.bias.normal_(0, 3.0)  # far from zero, as a trained bias drifts
    old.train()
    for _ in range(3):
        old(torch.rand(16, 1, 16, 16))  # running statistics away from their start
    save_checkpoint(tmp_path / "old.pt", old, params={}, metrics={})
    assert "encoder.fc.bias" in torch.load(tmp_path / "old.pt", weights_only=True)["state_dict"]
    new = model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))
    assert new.encoder.fc.bias is None
    x = torch.rand(7, 1, 16, 16)
    with torch.no_grad():
        z_old, img_old = old.eval()(x)
        z_new, img_new = new(x)
    assert float((z_old - z_new).abs().max()) <= 1e-6 and float((img_old - img_new).abs().max()) <= 1e-6


def test_format_1_checkpoints_load_as_eae(tmp_path):
    """Checkpoints written before objectives existed (the code BatchNorm inside the encoder) still load."""
    model = build_objective("eae", SMALL, {"entropy_weight": 0.2})
    model(torch.rand(8, 1, 16, 16))
    model.eval()
    state = {
        ("encoder.code_norm." + k[len("code_norm.") :] if k.startswith("code_norm.") else k): v
        for k, v in model.state_dict().items()
    }
    torch.save(
        {
            "format": FORMAT_V1,
            "arch": SMALL.to_dict(),
            "state_dict": state,
            "metrics": {},
            "params": {"entropy_weight": 0.2, "train": {"entropy_k": 1, "decoder_l2": 0.0}},
        },
        tmp_path / "v1.pt",
    )
    ckpt = load_checkpoint(tmp_path / "v1.pt")
    assert ckpt["objective"]["name"] == "eae" and ckpt["objective"]["weights"]["entropy_weight"] == 0.2
    back = model_from_checkpoint(ckpt)
    x = torch.rand(5, 1, 16, 16)
    torch.testing.assert_close(back(x)[0], model(x)[0])
    torch.testing.assert_close(back.code_norm.running_var, model.code_norm.running_var)


def test_errors(tmp_path):
    with pytest.raises(EAEError, match="missing"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(EAEError, match="cannot load"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(EAEError, match="not an EAE checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_weights_of_another_objective_are_refused(tmp_path):
    model = build_objective("vae", SMALL, {"kl_weight": 1.0})
    save_checkpoint(tmp_path / "m.pt", model, params={}, metrics={})
    ckpt = load_checkpoint(tmp_path / "m.pt")
    ckpt["objective"] = {"name": "eae", "weights": {"entropy_weight": 0.1}}
    with pytest.raises(EAEError, match="do not fit objective 'eae'"):
        model_from_checkpoint(ckpt)
