import json
import subprocess

import pytest

from eae.errors import EAEError
from eae.evaluation.results import Results
from eae.export.card import FORMAT, sha256_file
from pipelines.orchestration.promote import promote_if_better


def candidate(repo, payload: bytes, gmm: float, extractor="classifier"):
    """Write a fake exported generator (files + card) and its fid.json."""
    models, reports = repo / "models", repo / "reports"
    models.mkdir(exist_ok=True)
    reports.mkdir(exist_ok=True)
    (models / "generator.onnx").write_bytes(payload)
    (models / "decoder.onnx").write_bytes(b"decoder-" + payload)
    (models / "generator_z.onnx").write_bytes(b"z-" + payload)
    (models / "README.md").write_text(f"model card of {payload!r}")
    fid = Results({"fd": {"gmm": gmm, "isotropic": 2 * gmm}}, {"feature_extractor": extractor}).to_dict()
    card = {
        "format": FORMAT,
        "sha256": sha256_file(models / "generator.onnx"),
        "sampler": "gmm",
        "evaluation": fid,
        "decoder": {"file": "decoder.onnx", "sha256": sha256_file(models / "decoder.onnx")},
    }
    (models / "generator.json").write_text(json.dumps(card))
    (reports / "fid.json").write_text(json.dumps(fid))


def test_first_candidate_is_promoted(tmp_path):
    candidate(tmp_path, b"v1", 3.0)
    decision = promote_if_better(tmp_path)
    assert decision["promoted"] and decision["previous"] is None
    assert (tmp_path / "models/promoted/generator.onnx").read_bytes() == b"v1"
    assert (tmp_path / "models/promoted/decoder.onnx").read_bytes() == b"decoder-v1"
    assert (tmp_path / "models/promoted/generator_z.onnx").read_bytes() == b"z-v1"
    assert (tmp_path / "models/promoted/README.md").read_text() == "model card of b'v1'"
    assert json.loads((tmp_path / "reports/promotion.json").read_text())["candidate"]["value"] == 3.0


def test_better_replaces_worse_keeps(tmp_path):
    candidate(tmp_path, b"v1", 3.0)
    promote_if_better(tmp_path)
    candidate(tmp_path, b"v2", 2.0)
    better = promote_if_better(tmp_path)
    assert better["promoted"] and better["previous"]["value"] == 3.0 and better["candidate"]["value"] == 2.0
    assert (tmp_path / "models/promoted/generator.onnx").read_bytes() == b"v2"
    candidate(tmp_path, b"v3", 2.5)
    worse = promote_if_better(tmp_path)
    assert not worse["promoted"] and "2.5000 >= promoted 2.0000" in worse["reason"]
    assert (tmp_path / "models/promoted/generator.onnx").read_bytes() == b"v2"
    record = json.loads((tmp_path / "reports/promotion.json").read_text())
    assert record["promoted"] is False and record["previous"]["value"] == 2.0
    assert record["previous"]["evaluation"]["metrics"] == {"fd": {"gmm": 2.0, "isotropic": 4.0}}
    assert {"git_commit", "git_dirty", "dvc_generator_md5"} <= set(record["revision"])


def test_incomparable_metrics_are_not_promoted(tmp_path):
    candidate(tmp_path, b"v1", 3.0, extractor="classifier")
    promote_if_better(tmp_path)
    candidate(tmp_path, b"v2", 1.0, extractor="inception")
    decision = promote_if_better(tmp_path)
    assert not decision["promoted"] and "not comparable" in decision["reason"]


def test_a_card_from_before_the_results_schema_still_compares(tmp_path):
    candidate(tmp_path, b"v1", 3.0)
    promote_if_better(tmp_path)
    card_file = tmp_path / "models/promoted/generator.json"
    card = json.loads(card_file.read_text())  # its evaluation as the evaluate stage wrote it before the schema
    card_file.write_text(
        json.dumps({**card, "evaluation": {"gmm": 3.0, "isotropic": 6.0, "feature_extractor": "classifier"}})
    )
    candidate(tmp_path, b"v2", 2.0)
    decision = promote_if_better(tmp_path)
    assert decision["promoted"] and decision["previous"]["value"] == 3.0


def test_tampered_candidate_is_refused(tmp_path):
    candidate(tmp_path, b"v1", 3.0)
    (tmp_path / "models/generator.onnx").write_bytes(b"tampered")
    with pytest.raises(EAEError, match="does not match"):
        promote_if_better(tmp_path)
    assert not (tmp_path / "models/promoted").exists()


def commit_scores(repo, recorded_seed: int = 0) -> None:
    """A git repository whose HEAD holds the candidate's reports/fid.json, params.yaml (seed: 0) and a dvc.lock
    that records ``recorded_seed``: the committed scores of the committed parameters when it is 0."""
    (repo / "params.yaml").write_text("seed: 0\n")
    lock = {"schema": "2.0", "stages": {"evaluate": {"cmd": "x", "params": {"params.yaml": {"seed": recorded_seed}}}}}
    (repo / "dvc.lock").write_text(json.dumps(lock))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "reports/fid.json", "params.yaml", "dvc.lock"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "scores"], cwd=repo, check=True)


def test_a_first_promotion_must_match_the_committed_scores(tmp_path):
    """Issue 32: a worse experiment left in the workspace (β = 0.5 after `dvc exp run`) was promoted as
    "no promoted model yet"; now the committed scores (reports/fid.json at HEAD) are the gate."""
    candidate(tmp_path, b"committed", 2.0)
    commit_scores(tmp_path)
    candidate(tmp_path, b"worse", 3.0)
    worse = promote_if_better(tmp_path)
    assert not worse["promoted"] and worse["reason"].startswith(
        "gmm 3.0000 > committed 2.0000 (reports/fid.json at HEAD"
    )
    assert worse["committed"]["value"] == 2.0 and not (tmp_path / "models/promoted").exists()

    candidate(tmp_path, b"other features", 1.0, extractor="inception")
    assert "not comparable" in promote_if_better(tmp_path)["reason"]

    candidate(tmp_path, b"committed", 2.0)  # the committed model, reproduced: as good as its scores
    same = promote_if_better(tmp_path)
    assert same["promoted"] and same["reason"].startswith("gmm 2.0000 <= committed 2.0000")
    assert (tmp_path / "models/promoted/generator.onnx").read_bytes() == b"committed"
    candidate(tmp_path, b"worse again", 2.5)  # then the promoted model is the gate, as before
    assert promote_if_better(tmp_path)["reason"] == "gmm 2.5000 >= promoted 2.0000"


def test_committed_scores_of_other_parameters_are_no_gate(tmp_path):
    """HEAD's dvc.lock records seed 1, its params.yaml says 0: its scores were made with other parameters."""
    candidate(tmp_path, b"committed", 2.0)
    commit_scores(tmp_path, recorded_seed=1)
    candidate(tmp_path, b"worse", 3.0)
    first = promote_if_better(tmp_path)
    assert first["promoted"] and first["committed"] is None
    assert first["reason"].startswith("no promoted model yet and no committed scores of the committed parameters")
