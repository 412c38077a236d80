"""What a retrain run shows in the Prefect UI, as plain data (no Prefect here; pipelines.orchestration.flows publishes it).

- table ``eae-fid``: one row per sampler × metric of reports/fid.json, this run next to the model
  that was promoted before the run (its card's evaluation);
- markdown ``eae-promotion``: the decision, both values of the gating metric, the git and DVC
  revisions and where the report, the decision record and the promoted model are;
- ``regression(decision)``: the payload of the ``eae.metric.regressed`` event when this run's
  model is worse than the promoted one on the gating metric (comparable features), else None.

The keys are stable, so the UI lists each run's artifacts as versions of the same two artifacts.
"""

from __future__ import annotations

from pathlib import Path

from eae.errors import EAEError
from eae.export.card import read_card
from eae.export.readme import evaluation_results

FID_KEY = "eae-fid"
PROMOTION_KEY = "eae-promotion"
REGRESSED_EVENT = "eae.metric.regressed"


def promoted_evaluation(repo: str | Path) -> dict | None:
    """The evaluation in models/promoted/generator.json (None without a readable promoted card)."""
    try:
        return read_card(Path(repo) / "models" / "promoted" / "generator.onnx").get("evaluation")
    except EAEError:
        return None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def fid_table(this_run: dict, promoted: dict | None) -> list[dict]:
    """Rows {sampler, metric, this run, promoted, change} for every sampler × metric either evaluation holds
    (``None`` where one has no value); ``change`` = this run − promoted."""
    current = {(r["sampler"], r["metric"]): r["value"] for r in evaluation_results(this_run)[0]}
    previous = {(r["sampler"], r["metric"]): r["value"] for r in evaluation_results(promoted or {})[0]}
    keys = list(current) + [k for k in previous if k not in current]
    rows = []
    for sampler, metric in keys:
        now, before = current.get((sampler, metric)), previous.get((sampler, metric))
        rows.append(
            {
                "sampler": sampler,
                "metric": metric,
                "this run": _rounded(now),
                "promoted": _rounded(before),
                "change": _rounded(now - before) if now is not None and before is not None else None,
            }
        )
    return rows


def regression(decision: dict | None) -> dict | None:
    """The regression event's payload, when the candidate lost to a comparable promoted model."""
    if not decision or decision["promoted"] or not decision.get("previous"):
        return None
    candidate, previous = decision["candidate"], decision["previous"]
    if previous.get("value") is None or previous.get("feature_extractor") != candidate.get("feature_extractor"):
        return None
    if candidate["value"] <= previous["value"]:
        return None
    return {
        "metric": decision["metric"],
        "candidate": candidate["value"],
        "promoted": previous["value"],
        "feature_extractor": candidate.get("feature_extractor"),
        "reason": decision["reason"],
    }


def registry_row(outcome: dict) -> str:
    """The promotion table's row for the model registry (versions and stage, or why there is none)."""
    if not outcome.get("registered"):
        return f"| registry | not registered: {outcome.get('reason')} |"
    versions = ", ".join(f"{name} {a['version']} ({a['stage']})" for name, a in outcome["artifacts"].items())
    return f"| registry | {versions} at commit `{outcome['commit']}` |"


def promotion_markdown(repo: str | Path, decision: dict | None, revision: dict) -> str:
    """The run's promotion summary (Markdown)."""
    root = Path(repo).resolve()
    if decision is None:
        title, reason = "promotion not evaluated", "the run was started without promotion (--no-promote)"
    else:
        title = "promoted the new generator" if decision["promoted"] else "kept the promoted generator"
        reason = decision["reason"]
    lines = [
        f"# eae-retrain: {title}",
        "",
        "| | |",
        "|---|---|",
        f"| decision | **{title}** |",
        f"| reason | {reason} |",
    ]
    if decision is not None:
        previous = decision.get("previous") or {}
        lines.append(
            f"| {decision['metric']} | this run {decision['candidate']['value']:.4f}, promoted before "
            + (f"{previous['value']:.4f}" if previous.get("value") is not None else "none")
            + " |"
        )
        lines.append(f"| features | {decision['candidate'].get('feature_extractor')} |")
        lines.append(f"| generator sha256 | `{decision['candidate']['sha256']}` |")
        if "registry" in decision:  # promoted: the model registry's outcome (pipelines.orchestration.registry)
            lines.append(registry_row(decision["registry"]))
    dirty = " (working tree dirty)" if revision.get("git_dirty") else ""
    lines += [
        f"| git commit | `{revision.get('git_commit') or 'not a git repository'}`{dirty} |",
        f"| DVC md5 of models/generator.onnx | `{revision.get('dvc_generator_md5') or 'not in dvc.lock'}` |",
        f"| report | `{root / 'reports' / 'index.html'}` |",
        f"| decision record | `{root / 'reports' / 'promotion.json'}` |",
        f"| promoted model | `{root / 'models' / 'promoted'}` (its model card: README.md) |",
    ]
    return "\n".join(lines) + "\n"
