"""Issue 22, classes 4 and 5: hostile checkpoints. ``load_checkpoint`` is the one loader of the file kind;
whatever is wrong is one line naming the file and, where there is one, the key (and both shapes)."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from eae.errors import EAEError, StaleArtifact
from eae.models.networks import ArchConfig
from eae.models.objectives.registry import build_objective
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint, require, save_checkpoint
from pipelines._stage import error_line
from tests.helpers.workspace import assert_refused, fingerprint, module

pytestmark = pytest.mark.reliability

SMALL = ArchConfig(image_shape=(1, 16, 16), latent_dim=4, encoder_channels=(8, 16), decoder_channels=(16, 8))


def saved(tmp_path, change=None, arch: ArchConfig = SMALL, name: str = "m.pt"):
    """A checkpoint of a fresh EAE, with ``change(payload)`` applied to what is saved."""
    torch.manual_seed(0)
    model = build_objective("eae", arch, {"entropy_weight": 0.2})
    path = tmp_path / name
    save_checkpoint(path, model, params={"seed": 0}, metrics={}, extra={"dataset": "digits", "data_hash": "x"})
    if change is not None:
        payload = torch.load(path, weights_only=True)
        change(payload)
        torch.save(payload, path)
    return path


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_nan_weights_are_refused_naming_the_key(tmp_path):
    """Before: loaded, and the export's parity check was the first to notice (NaN images)."""
    path = saved(tmp_path, lambda p: p["state_dict"]["decoder.fc.weight"].view(-1)[:3].fill_(float("nan")))
    with pytest.raises(StaleArtifact) as info:
        load_checkpoint(path)
    assert info.value.artifact == "checkpoint"
    assert one_line(info) == (
        f"{path}: weights 'decoder.fc.weight' hold 3 NaN or infinite value(s) of 4096: the run that wrote it diverged"
    )
    # the stage adds how to make it again
    assert error_line(info.value) == f"{one_line(info)} (retrain: dvc repro train)"


def test_infinite_running_statistics_are_refused(tmp_path):
    path = saved(tmp_path, lambda p: p["state_dict"]["code_norm.running_var"].fill_(float("inf")))
    with pytest.raises(EAEError, match=r"weights 'code_norm\.running_var' hold 4 NaN or infinite"):
        load_checkpoint(path)


def test_wrong_architecture_names_the_file_key_and_both_shapes(tmp_path):
    """Class 5: the error stopped after "Error(s) in loading state_dict for EAE:" (no file, key or shape)."""
    other = saved(tmp_path, arch=ArchConfig((1, 16, 16), 6, (8, 16), (16, 8)), name="other.pt")
    path = saved(tmp_path, lambda p: p.__setitem__("state_dict", torch.load(other, weights_only=True)["state_dict"]))
    with pytest.raises(EAEError) as info:
        model_from_checkpoint(load_checkpoint(path))
    assert one_line(info) == (
        f"{path}: weights do not fit objective 'eae' with the recorded architecture (latent_dim 4, encoder_channels "
        "[8, 16], decoder_channels [16, 8], kernel_size 4, spectral_norm False, code_batchnorm True): 'encoder.fc.weight' has shape "
        "[6, 256] in the file but the network needs [4, 256] (and 3 more)"
    )


def test_an_old_layout_that_cannot_be_upgraded_is_one_line(tmp_path):
    """The EAE folds an old encoder bias into the code BatchNorm's running mean; tensors of other sizes
    made that a broadcasting traceback."""
    path = saved(tmp_path, lambda p: p["state_dict"].__setitem__("encoder.fc.bias", torch.zeros(7)))
    with pytest.raises(EAEError, match=r"weights do not fit .*: its weights cannot be upgraded to today's layout: "):
        model_from_checkpoint(load_checkpoint(path))


def test_missing_and_extra_weights_are_named(tmp_path):
    path = saved(tmp_path, lambda p: p["state_dict"].pop("decoder.fc.bias"))
    with pytest.raises(EAEError, match=r"the network needs 'decoder\.fc\.bias', which the file lacks$"):
        model_from_checkpoint(load_checkpoint(path))
    path = saved(tmp_path, lambda p: p["state_dict"].__setitem__("extra.weight", torch.zeros(2)))
    with pytest.raises(EAEError, match=r"the file has 'extra\.weight', which the network has no place for$"):
        model_from_checkpoint(load_checkpoint(path))


@pytest.mark.parametrize(
    "change, culprit",
    [
        (lambda p: p.__setitem__("state_dict", [1, 2]), r"record 'state_dict' is a list, expected a dict"),
        (lambda p: p.pop("arch"), r"record 'arch' is missing, expected a dict"),
        (lambda p: p["state_dict"].__setitem__("encoder.fc.bias", 3.0), r"weights 'encoder\.fc\.bias' are a float"),
        (lambda p: p["arch"].__setitem__("image_shape", [1, 15, 15]), r"record 'arch' cannot build the networks: "),
        (lambda p: p["arch"].__setitem__("depth", 3), r"record 'arch' cannot build the networks: .*'depth'"),
        (lambda p: p.__setitem__("objective", {"name": 7}), r"record 'objective' must be"),
    ],
)
def test_oddly_typed_records_are_one_line(tmp_path, change, culprit):
    """Each was a KeyError/TypeError traceback in the stage that loaded it."""
    path = saved(tmp_path, change)
    with pytest.raises(EAEError, match=culprit) as info:
        model_from_checkpoint(load_checkpoint(path))
    assert one_line(info).startswith(str(path))


def test_unknown_objective_names_the_file(tmp_path):
    path = saved(tmp_path, lambda p: p["objective"].__setitem__("name", "gan"))
    with pytest.raises(EAEError, match=rf"^{path}: unknown objective 'gan'"):
        model_from_checkpoint(load_checkpoint(path))


def test_truncated_checkpoint(tmp_path):
    path = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(EAEError, match=rf"^cannot load checkpoint {path}: ") as info:
        load_checkpoint(path)
    one_line(info)


def test_fifo_checkpoint_does_not_block(tmp_path):
    """torch.load of a FIFO waits for a writer forever."""
    fifo = tmp_path / "eae.pt"
    os.mkfifo(fifo)
    result = {}

    def load():
        try:
            load_checkpoint(fifo)
        except EAEError as exc:
            result["error"] = str(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    assert result.get("error") == f"checkpoint {fifo} is a FIFO (named pipe), not a regular file"


def test_a_field_a_stage_reads_is_required(tmp_path):
    ckpt = load_checkpoint(saved(tmp_path, lambda p: p.pop("data_hash")))
    require(ckpt, "dataset", "params.seed")
    with pytest.raises(StaleArtifact, match=r"m\.pt: lacks 'data_hash' \(it was not written by this version") as info:
        require(ckpt, "dataset", "data_hash")
    assert error_line(info.value).endswith("(retrain: dvc repro train)")
    with pytest.raises(EAEError, match=r"lacks 'params\.model'"):
        require(ckpt, "params.model")


def test_export_refuses_a_nan_checkpoint_and_keeps_its_outputs(workspace):
    """End to end: exit 1, the one line, the last good export intact."""
    path = workspace / "models/eae.pt"
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["decoder.fc.weight"].view(-1)[0] = float("nan")
    torch.save(payload, path)
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.export", cwd=workspace),
        1,
        r"^error: models/eae\.pt: weights 'decoder\.fc\.weight' hold 1 NaN or infinite value\(s\)",
    )
    assert fingerprint(workspace) == before
