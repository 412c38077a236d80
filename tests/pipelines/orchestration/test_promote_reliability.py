"""Metric-gated promotion never promotes a set whose files do not match their card."""

from __future__ import annotations

import json

import pytest

from eae.errors import EAEError
from pipelines.orchestration.promote import promote_if_better
from tests.helpers.workspace import fingerprint

pytestmark = pytest.mark.reliability

PROMOTED = ("models/promoted",)


@pytest.fixture
def promoted(workspace):
    """The workspace with its export promoted once, and a better metric for the next candidate."""
    assert promote_if_better(workspace)["promoted"]
    fid = json.loads((workspace / "reports/fid.json").read_text())
    fid["metrics"]["fd"]["gmm"] = 0.5
    (workspace / "reports/fid.json").write_text(json.dumps(fid))
    return workspace


def refused(ws, pattern: str) -> None:
    before = fingerprint(ws, PROMOTED)
    with pytest.raises(EAEError, match=pattern) as info:
        promote_if_better(ws)
    assert "\n" not in str(info.value)
    assert fingerprint(ws, PROMOTED) == before


def test_truncated_decoder_is_not_promoted(promoted):
    """Item 7: a truncated decoder.onnx was promoted (only generator.onnx was checked)."""
    data = (promoted / "models/decoder.onnx").read_bytes()
    (promoted / "models/decoder.onnx").write_bytes(data[: len(data) // 2])
    refused(promoted, r"decoder\.onnx: sha256 .* does not match its model card")


def test_missing_decoder_is_not_promoted(promoted):
    (promoted / "models/decoder.onnx").unlink()
    refused(promoted, r"cannot read .*decoder\.onnx")


def test_card_without_sha256_is_not_promoted(promoted):
    card = json.loads((promoted / "models/generator.json").read_text())
    del card["sha256"]
    (promoted / "models/generator.json").write_text(json.dumps(card))
    refused(promoted, r"pins no valid sha256 for generator\.onnx")


def test_tampered_generator_is_not_promoted(promoted):
    """Handled before the probe."""
    (promoted / "models/generator.onnx").write_bytes(b"tampered")
    refused(promoted, r"generator\.onnx: sha256 .* does not match its model card")


def test_intact_better_candidate_is_promoted(promoted):
    decision = promote_if_better(promoted)
    assert decision["promoted"] and decision["candidate"]["value"] == 0.5
