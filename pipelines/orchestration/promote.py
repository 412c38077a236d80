"""Metric-gated promotion of the exported generator (no Prefect, no DVC calls: plain files).

The candidate is models/generator.onnx + its card (models/generator.json and, for people,
models/README.md) + models/decoder.onnx + models/generator_z.onnx (torch-fidelity's contract).
It replaces models/promoted/ only when its Fréchet distance (reports/fid.json, one sampler) is
lower than the promoted model's, measured with the same feature extractor. With no promoted model
yet, it must be at least as good as the committed scores (reports/fid.json at HEAD: what the
repository says its model reaches), so a worse experiment left in the workspace is never promoted
first. The decision, the numbers and the git/DVC revision go to reports/promotion.json.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from eae.errors import EAEError
from eae.evaluation.results import parse_results, read_results
from eae.export.card import card_path, decoder_sha256, read_card, verify_file
from eae.io import atomic_dir, write_json
from pipelines import dvcfile
from pipelines._stage import GENERATOR_ONNX, dvc_out_md5
from pipelines.orchestration.workspace import flatten

FILES = ("generator.onnx", "generator.json", "decoder.onnx", "generator_z.onnx", "README.md")


def revision(repo: Path) -> dict:
    """git commit (and whether the work tree is dirty) plus the DVC hash of the generator output."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return {
        "git_commit": git("rev-parse", "HEAD") or None,
        "git_dirty": bool(git("status", "--porcelain")),
        "dvc_generator_md5": dvc_out_md5(GENERATOR_ONNX, repo),
    }


def committed_scores(repo: Path, metric: str) -> dict | None:
    """The gating metric of reports/fid.json at HEAD ({"value", "feature_extractor", "commit"}); None without
    a commit, a committed fid.json or a value for ``metric`` there, or when HEAD's dvc.lock records other
    parameters than HEAD's params.yaml (its scores were not made with the committed parameters)."""

    def git(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    text = git("show", "HEAD:reports/fid.json")
    try:  # a stage dvc.yaml no longer has may linger in dvc.lock
        stages: list[str] | None = list(dvcfile.stages(repo))
    except dvcfile.READ_ERRORS:
        stages = None  # every stage of dvc.lock
    if text is None or not describes_head_params(git("show", "HEAD:dvc.lock"), git("show", "HEAD:params.yaml"), stages):
        return None
    try:
        results = parse_results(json.loads(text))
    except (ValueError, EAEError):
        return None
    if results.value("fd", metric) is None:
        return None
    return {
        "value": results.value("fd", metric),
        "feature_extractor": results.feature_extractor,
        "commit": (git("rev-parse", "HEAD") or "").strip(),
    }


def describes_head_params(lock_text: str | None, params_text: str | None, stages: list[str] | None = None) -> bool:
    """Whether every parameter value a dvc.lock records for ``stages`` (None: all) is the one params.yaml holds
    (both read as DVC reads them: YAML 1.2)."""
    if not lock_text or not params_text:
        return False
    reader = YAML(typ="safe")
    try:
        params = flatten(reader.load(params_text) or {})
        locked = (reader.load(lock_text) or {}).get("stages") or {}
    except (YAMLError, AttributeError):
        return False
    missing = object()
    for name in locked if stages is None else stages:
        recorded = flatten(((locked.get(name) or {}).get("params") or {}).get("params.yaml") or {})
        if any(params.get(key, missing) != value for key, value in recorded.items()):
            return False
    return True


def gate(candidate: dict, current: dict | None, committed: dict | None, metric: str) -> tuple[bool, str]:
    """(promote, reason): lower than the promoted model's value; with none, not higher than the committed one."""
    if current is not None and current["value"] is not None:
        reference, name, where = current, "promoted model", ""
    elif committed is not None:
        reference, name = committed, "committed scores"
        where = f" (reports/fid.json at HEAD {committed['commit'][:12]}; no promoted model yet)"
    else:
        return True, (
            "no promoted model yet and no committed scores of the committed parameters (reports/fid.json and "
            "dvc.lock at HEAD) to compare with"
        )
    if reference["feature_extractor"] != candidate["feature_extractor"]:
        return False, (
            f"metrics are not comparable: candidate uses {candidate['feature_extractor']!r} "
            f"features, {name} {reference['feature_extractor']!r}{where}"
        )
    value, ref = candidate["value"], reference["value"]
    if current is not None and current["value"] is not None:  # better than the promoted model
        ok, sign = value < ref, "<" if value < ref else ">="
    else:  # at least as good as the committed scores (a rerun of the committed model reproduces them)
        ok, sign = value <= ref, "<=" if value <= ref else ">"
    label = "promoted" if not where else "committed"
    return ok, f"{metric} {value:.4f} {sign} {label} {ref:.4f}{where}"


def promote_if_better(repo: str | Path, metric: str = "gmm") -> dict:
    """Compare the candidate with models/promoted/ (with none yet: the committed scores) on the Fréchet
    distance of sampler ``metric``; copy it there only if better. Returns the decision."""
    repo = Path(repo)
    models, promoted = repo / "models", repo / "models" / "promoted"
    results = read_results(repo / "reports" / "fid.json")
    if results.value("fd", metric) is None:
        raise EAEError(f"reports/fid.json has no Fréchet distance for sampler {metric!r}")
    candidate_card = read_card(models / "generator.onnx")
    verify_file(models / "generator.onnx", candidate_card["sha256"])  # the card pins both files of the set
    verify_file(models / "decoder.onnx", decoder_sha256(candidate_card, card_path(models / "generator.onnx")))
    candidate = {
        "value": results.value("fd", metric),
        "feature_extractor": results.feature_extractor,
        "sampler": candidate_card["sampler"],
        "sha256": candidate_card["sha256"],
    }

    current = None
    if (promoted / "generator.json").exists():
        card = read_card(promoted / "generator.onnx")
        evaluation = card.get("evaluation") or {}
        theirs = parse_results(evaluation)
        current = {
            "value": theirs.value("fd", metric),
            "feature_extractor": theirs.feature_extractor,
            "sampler": card.get("sampler"),
            "sha256": card.get("sha256"),
            "evaluation": evaluation,
        }

    committed = committed_scores(repo, metric) if current is None or current["value"] is None else None
    promote, reason = gate(candidate, current, committed, metric)

    if promote:
        with atomic_dir(promoted) as tmp:
            for name in FILES:
                shutil.copy2(models / name, tmp / name)
    decision = {
        "promoted": promote,
        "reason": reason,
        "metric": metric,
        "candidate": candidate,
        "previous": current,
        "committed": committed,
        "revision": revision(repo),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(repo / "reports" / "promotion.json", decision)
    return decision
