"""The evaluation record (``reports/fid.json``): one schema, one reader.

    {"schema": "eae-results/2",
     "metrics": {metric: {column: number}},
     "class_shares": {column: [share of each predicted class]},     (labelled data, classifier features)
     "protocol": {"feature_extractor", "metric_name", "n_generated", "reference": {"split", "n"},
                  "checkpoint_sha256", "density_sha256", ...}}

Metrics (``METRICS``): ``fd`` the Fréchet distance (FID with Inception features), ``kid`` (mean over the
subsets) and ``kid_std``, ``precision`` and ``recall`` (k = 3), ``class_entropy`` (digits). Columns
(``COLUMNS``): the samplers of ``eae.sampling.density.ALL_SAMPLERS``, then ``reconstruction`` (the
test images reconstructed, not generated).

``protocol.checkpoint_sha256`` and ``protocol.density_sha256`` name the files that were scored (the
sha256 of models/eae.pt and models/density.npz): ``Results.provenance_problem`` says when the scores
belong to other files (a retrain without evaluate), so the report and the model card never show them
as this run's. Records written before them have neither (their provenance is unknown).

``parse_results`` / ``read_results`` are the only readers: the model card, promotion, the Prefect
artifacts, Table 1 and the report all go through them. They also read the record evaluate wrote
before this schema (Fréchet distances as top-level sampler keys, ``kid: {column: {mean, std}}``,
``precision: {column: value}``), so old model cards and old experiments still compare.

No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

from eae.errors import EAEError
from eae.io import read_json
from eae.sampling import ALL_SAMPLERS

SCHEMA = "eae-results/2"
RECONSTRUCTION = "reconstruction"
COLUMNS = (*ALL_SAMPLERS, RECONSTRUCTION)
#: metric -> True when lower is better (None: not a score, e.g. a spread)
METRICS: dict[str, bool | None] = {
    "fd": True,
    "kid": True,
    "kid_std": None,
    "precision": False,
    "recall": False,
    "class_entropy": False,
}
LABELS = {
    "fd": "Fréchet distance",
    "kid": "KID",
    "kid_std": "KID std",
    "precision": "precision",
    "recall": "recall",
    "class_entropy": "class entropy",
}
# Scalars the format-1 record kept at its top level, and their protocol keys.
_V1_PROTOCOL = {
    "feature_extractor": "feature_extractor",
    "metric": "metric_name",
    "n_samples": "n_generated",
    "classifier_test_accuracy": "classifier_test_accuracy",
    "inception_dims": "inception_dims",
}


def _number(value: Any) -> float | None:
    """A finite float, or None (booleans, strings, NaN and infinities are not scores)."""
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class Results:
    metrics: dict[str, dict[str, float]]  # metric -> column -> value
    protocol: dict = field(default_factory=dict)
    class_shares: dict[str, list[float]] = field(default_factory=dict)

    def value(self, metric: str, column: str) -> float | None:
        return self.metrics.get(metric, {}).get(column)

    @property
    def columns(self) -> list[str]:
        """The columns any metric has, in ``COLUMNS`` order."""
        present = {c for values in self.metrics.values() for c in values}
        return [c for c in COLUMNS if c in present]

    @property
    def feature_extractor(self) -> str | None:
        return self.protocol.get("feature_extractor")

    def rows(self) -> list[dict]:
        """``{"sampler", "metric", "value"}`` per column and metric, columns in ``COLUMNS`` order, metrics
        in ``METRICS`` order."""
        return [
            {"sampler": c, "metric": m, "value": v}
            for c in self.columns
            for m in METRICS
            if (v := self.value(m, c)) is not None
        ]

    def provenance_problem(self, checkpoint_sha256: str, density_sha256: str | None = None) -> str | None:
        """Why these scores do not belong to the checkpoint (and density) with these sha256s: the file
        the record names is another one; None when they belong, or when the record names none (written
        before the sha256s were recorded: unknown)."""
        for what, recorded, actual in (
            ("checkpoint", self.protocol.get("checkpoint_sha256"), checkpoint_sha256),
            ("density", self.protocol.get("density_sha256"), density_sha256),
        ):
            if isinstance(recorded, str) and actual is not None and recorded != actual:
                return (
                    f"its scores belong to another {what} (sha256 {recorded[:12]}…), not the current one "
                    f"({actual[:12]}…)"
                )
        return None

    def per_column(self) -> list[dict]:
        """One row per column, ``{"sampler": column, metric: value, ...}`` (metrics in ``METRICS`` order): the
        per-sampler score chart's data (reports/scores.json, a DVC plot)."""
        return [{"sampler": c, **{m: v for m in METRICS if (v := self.value(m, c)) is not None}} for c in self.columns]

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"schema": SCHEMA, "metrics": self.metrics}
        if self.class_shares:
            out["class_shares"] = self.class_shares
        out["protocol"] = self.protocol
        return out


def _clean(metrics: Mapping) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        values = metrics.get(metric)
        if isinstance(values, Mapping):
            kept = {c: v for c in COLUMNS if (v := _number(values.get(c))) is not None}
            if kept:
                out[metric] = kept
    return out


def _from_v1(data: Mapping) -> Results:
    metrics: dict[str, dict] = {"fd": {c: data.get(c) for c in COLUMNS}}
    kid = data.get("kid") if isinstance(data.get("kid"), Mapping) else {}
    metrics["kid"] = {c: v.get("mean") for c, v in kid.items() if isinstance(v, Mapping)}
    metrics["kid_std"] = {c: v.get("std") for c, v in kid.items() if isinstance(v, Mapping)}
    for metric in ("precision", "recall", "class_entropy"):
        if isinstance(data.get(metric), Mapping):
            metrics[metric] = dict(data[metric])
    protocol = {new: data[old] for old, new in _V1_PROTOCOL.items() if isinstance(data.get(old), (str, int, float))}
    if isinstance(data.get("protocol"), Mapping):
        protocol.update(data["protocol"])
    if isinstance(data.get("n_test"), int):
        protocol.setdefault("reference", {"split": "test", "n": data["n_test"]})
    shares = data.get("class_shares") if isinstance(data.get("class_shares"), Mapping) else {}
    return Results(_clean(metrics), protocol, dict(shares))


def parse_results(data: Any) -> Results:
    """The Results of an evaluation record (this schema or the format-1 one; see the module)."""
    if isinstance(data, Results):
        return data
    if not isinstance(data, Mapping):
        raise EAEError(f"an evaluation record must be a JSON object, got {type(data).__name__}")
    if data.get("schema") == SCHEMA or isinstance(data.get("metrics"), Mapping) and "schema" not in data:
        metrics = data.get("metrics") or {}
        protocol = data.get("protocol") if isinstance(data.get("protocol"), Mapping) else {}
        shares = data.get("class_shares") if isinstance(data.get("class_shares"), Mapping) else {}
        return Results(_clean(metrics), dict(protocol), dict(shares))
    if "schema" in data:
        raise EAEError(f"unknown evaluation record schema {data['schema']!r} (this version reads {SCHEMA})")
    return _from_v1(data)


def read_results(path: str | Path) -> Results:
    """``parse_results`` of a JSON file; one-line EAEError naming the file when it is missing or bad."""
    try:
        return parse_results(read_json(path))
    except EAEError as exc:
        raise EAEError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
