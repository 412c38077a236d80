"""Experiments from ``dvc exp show --json`` as flat records for the report (plain data, no DVC import)."""

from __future__ import annotations

from typing import Any

from eae.errors import EAEError
from eae.evaluation.results import parse_results


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1e-3}} -> {'train.lr': 1e-3}; lists are kept as values."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _file_data(section: dict | None, path: str) -> dict:
    entry = (section or {}).get(path) or {}
    return entry.get("data") or {}


def _record(state: dict, kind: str, baseline: str | None, status: str | None, params_file: str, fid_file: str) -> dict:
    data = state.get("data") or {}
    error = state.get("error")
    try:
        results = parse_results(_file_data(data.get("metrics"), fid_file))
    except EAEError:  # an experiment whose record is from an unknown future schema: shown without scores
        results = parse_results({})
    return {
        "name": state.get("name") or (state.get("rev") if kind == "workspace" else str(state.get("rev", ""))[:7]),
        "rev": state.get("rev"),
        "kind": kind,
        "baseline": baseline,
        "status": status,
        "timestamp": data.get("timestamp"),
        "params": flatten(_file_data(data.get("params"), params_file)),
        "fid": dict(results.metrics.get("fd", {})),
        "metrics": results.metrics,
        "feature_extractor": results.feature_extractor,
        "error": (error or {}).get("msg") if isinstance(error, dict) else (str(error) if error else None),
    }


def parse_exp_show(rows: list, params_file: str = "params.yaml", fid_file: str = "reports/fid.json") -> list[dict]:
    """One record per workspace / baseline commit / experiment in ``dvc exp show --json`` output.

    Each record: name, rev, kind ('workspace' | 'baseline' | 'experiment'), baseline (the
    commit an experiment branches from), status (executor state of an experiment: success,
    running, failed, queued), timestamp, params (flattened params.yaml), fid (sampler ->
    Fréchet distance, from ``fid_file``), metrics (``{metric: {column: value}}`` of ``fid_file``, read
    by ``eae.evaluation.results``), feature_extractor, error. Queued experiments are skipped.
    """
    if not isinstance(rows, list):
        raise ValueError(f"the experiments must be a JSON list (as DVC lists them), got a {type(rows).__name__}")
    records = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        rev = row.get("rev")
        kind = "workspace" if rev == "workspace" else "baseline"
        records.append(_record(row, kind, None, None, params_file, fid_file))
        for exp in row.get("experiments") or []:
            status = (exp.get("executor") or {}).get("state")
            if status == "queued":
                continue
            revs = exp.get("revs") or []
            if revs:  # the experiment's own commit comes first; older checkpoints after it
                rec = _record(revs[0], "experiment", str(rev)[:7], status, params_file, fid_file)
                rec["name"] = exp.get("name") or rec["name"]
                records.append(rec)
    return _drop_duplicate_workspace(records)


def _drop_duplicate_workspace(records: list[dict]) -> list[dict]:
    """The workspace row repeats another record when nothing changed since a commit, or while an
    experiment runs in the workspace: keep only the named record then."""
    work = [r for r in records if r["kind"] == "workspace"]
    others = [r for r in records if r["kind"] != "workspace"]
    if work and any(r["params"] == work[0]["params"] and r["fid"] == work[0]["fid"] for r in others):
        return others
    return records


def varying_params(records: list[dict], ignore: tuple[str, ...] = ()) -> list[str]:
    """Keys of ``params`` whose values differ between records (sorted), minus ``ignore``."""
    keys = sorted({k for r in records for k in r["params"]})
    out = []
    for key in keys:
        if key in ignore:
            continue
        values = {repr(r["params"].get(key)) for r in records if r["params"]}
        if len(values) > 1:
            out.append(key)
    return out


def fid_points(records: list[dict], dataset: str | None = None, feature_extractor: str | None = None) -> list[dict]:
    """(entropy_weight, FIDs) of the records that have both, optionally only those of one dataset
    (params data.source) and feature extractor, so that every point is comparable."""
    points = []
    for r in records:
        beta = r["params"].get("entropy_weight")
        if beta is None or not r["fid"]:
            continue
        if dataset is not None and r["params"].get("data.source", dataset) != dataset:
            continue
        if feature_extractor is not None and r.get("feature_extractor") not in (None, feature_extractor):
            continue
        points.append({"name": r["name"], "entropy_weight": float(beta), **r["fid"]})
    return points
