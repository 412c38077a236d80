"""mkdocs hook: tables generated from the JSON files in reports/ at build time, so the docs cannot drift
from the measurements.

A page asks for a table with a marker on a line of its own::

    <!-- table: sweeps -->                          every reports/sweeps/*.json (scripts/sweep_table.py)
    <!-- table: sweeps files=flow columns=gmm,flow metrics=fd,recall -->   some files (stems), columns, metrics
    <!-- table: table1 column=gmm -->               reports/table1.json, one sampler: FD, KID, precision, recall
    <!-- table: fid -->                             reports/fid.json: the committed run of the default config
    <!-- table: bench -->                           reports/bench.json: every ratio with its goal and spread
    <!-- table: scale -->                           reports/bench.json's scale benchmark: seconds / peak MB per N
    <!-- table: rounding -->                        reports/bench.json's rounding benchmark: 1 vs 2 BLAS threads
    <!-- table: claims -->                          reports/claims.json: the paper's claims, a verdict per dataset

An unknown table or a missing file fails the build (``mkdocs build --strict`` runs in .ci/run).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
MARKER = re.compile(r"^<!--\s*table:\s*(?P<name>[a-z0-9_]+)(?P<args>(?:\s+[a-z_]+=[^\s]+)*)\s*-->$", re.M)


def _sweep_table():
    """scripts/sweep_table.py (a script, not a package) as a module: one implementation for CLI and docs."""
    spec = importlib.util.spec_from_file_location("sweep_table", ROOT / "scripts" / "sweep_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"docs/hooks.py: {path.relative_to(ROOT)} is missing (a docs table is made from it)")
    return json.loads(path.read_text())


def sweeps(files: str = "", columns: str = "gmm,isotropic", metrics: str = "fd,kid") -> str:
    folder = REPORTS / "sweeps"
    paths = [folder / f"{stem}.json" for stem in files.split(",")] if files else sorted(folder.glob("*.json"))
    for p in paths:
        _load(p)  # a clear error for a missing file
    return _sweep_table().markdown_table(paths, columns.split(","), metrics.split(","))


def table1(column: str = "gmm") -> str:
    cell = _sweep_table().cell
    table = _load(REPORTS / "table1.json")
    metrics = ("fd", "kid", "precision", "recall")
    lines = [
        f"| objective ({column} sampler) | seeds | " + " | ".join(metrics) + " |",
        "|---" * (2 + len(metrics)) + "|",
    ]
    for row in table["rows"]:
        values = []
        for m in metrics:
            text = cell(row["cells"], m, column)
            values.append(
                f"**{text}**" if text and table.get("best", {}).get(m, {}).get(column) == row["objective"] else text
            )
        lines.append(f"| {row['objective']} | {len(row['seeds'])} | " + " | ".join(values) + " |")
    lines.append("")
    lines.append(
        f"*{table['metric']}. Best per column in bold. Generated {table['generated_at']} "
        f"from `reports/table1.json` ({len(table['experiments'])} experiments).*"
    )
    return "\n".join(lines)


def fid() -> str:
    record = _load(REPORTS / "fid.json")
    metrics = record["metrics"]
    columns = list(metrics["fd"])
    names = [("fd", "Fréchet distance ↓"), ("kid", "KID ↓"), ("precision", "precision ↑"), ("recall", "recall ↑")]
    names += [("class_entropy", "class entropy ↑")] if "class_entropy" in metrics else []
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (1 + len(columns)) + "|"]
    for key, label in names:
        values = metrics.get(key, {})
        lines.append(f"| {label} | " + " | ".join(f"{values[c]:.3f}" if c in values else "" for c in columns) + " |")
    protocol = record.get("protocol", {})
    lines.append("")
    lines.append(
        f"*{protocol.get('metric_name', 'Fréchet distance')}; {protocol.get('n_generated', '?')} generated images "
        "per sampler against the test split. From `reports/fid.json`.*"
    )
    return "\n".join(lines)


def _number(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "%":
        return f"{value:+.1f} %"
    if unit == "count":
        return f"{value:.0f}"
    if abs(value) < 0.1:
        return f"{value:.3g} {unit}".strip()
    return f"{value:,.1f} {unit}".strip()


def bench() -> str:
    record = _load(REPORTS / "bench.json")
    lines = ["| benchmark | measured | spread | goal | met |", "|---|---|---|---|---|"]
    for b in record["benchmarks"]:
        if b["benchmark"] in ("scale", "rounding"):
            continue  # tables of their own: <!-- table: scale -->, <!-- table: rounding -->
        for row in b["rows"]:
            unit = row.get("unit", "")
            spread = row.get("spread")
            spread_text = f"{_number(spread[0], unit)} – {_number(spread[1], unit)}" if spread else ""
            goal = row.get("goal")
            goal_text = f"{goal['op']} {_number(goal['value'], unit)}" if goal else ""
            met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
            name = row["name"].replace("|", "\\|")
            lines.append(f"| {name} | {_number(row['value'], unit)} | {spread_text} | {goal_text} | {met} |")
    m = record["machine"]
    lines.append("")
    lines.append(
        f"*From `reports/bench.json` ({record['generated_at']}): {m.get('cpus')} CPUs ({m.get('cpu')}), "
        f"GPU {m.get('gpu') or 'none'}, torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}. "
        "Spread: the lowest and highest round.*"
    )
    return "\n".join(lines)


def scale() -> str:
    record = _load(REPORTS / "bench.json")
    found = [b for b in record["benchmarks"] if b["benchmark"] == "scale"]
    if not found:
        raise ValueError("docs/hooks.py: reports/bench.json has no scale benchmark")
    rows = found[0]["rows"]
    sizes = rows[0]["details"]["sizes"]
    head = " | ".join(f"N = {n:,}: s / peak MB" for n in sizes)
    lines = [f"| stage | {head} | time ~ N^a (wall, cpu) | flagged |", "|---" * (3 + len(sizes)) + "|"]
    for row in rows:
        d = row["details"]
        stage = row["name"].removeprefix("scale: ").split(", time ~")[0]
        cells = " | ".join(f"{s:,.1f} / {mb:,.0f}" for s, mb in zip(d["seconds"], d["peak_mb"], strict=True))
        exps = ", ".join(f"{d[k]:.2f}" for k in ("time_exponent", "cpu_time_exponent") if d.get(k) is not None)
        lines.append(f"| {stage} | {cells} | {exps} | {', '.join(d.get('flags') or []) or 'no'} |")
    lines.append("")
    lines.append(f"*From `reports/bench.json` (scale benchmark, {found[0]['generated_at']}).*")
    return "\n".join(lines)


def rounding() -> str:
    record = _load(REPORTS / "bench.json")
    found = [b for b in record["benchmarks"] if b["benchmark"] == "rounding"]
    if not found:
        raise ValueError("docs/hooks.py: reports/bench.json has no rounding benchmark")
    variants = {"bias": "with the bias (checkpoints before the fix)", "no_bias": "without (today)"}
    lines = [
        "| encoder code layer | max \\|Δw\\| after 2 epochs (28 steps) | after 60 epochs "
        "| FD gmm, 1 vs 2 threads | FD isotropic, 1 vs 2 threads |",
        "|---|---|---|---|---|",
    ]
    for row in found[0]["rows"]:
        d = row.get("details") or {}
        if "max_dw_short" not in d:
            continue
        variant = row["name"].rsplit(", ", 1)[-1]
        one, two = d["fd"]["1 thread"], d["fd"]["2 threads"]
        fds = [f"{one[c]:.3f} vs {two[c]:.3f} ({100 * d['fd_spread'][c]:.1f} %)" for c in ("gmm", "isotropic")]
        lines.append(
            f"| {variants.get(variant, variant)} | {d['max_dw_short']:.3g} (`{d['where_short']}`) "
            f"| {d['max_dw_full']:.3g} | " + " | ".join(fds) + " |"
        )
    lines.append("")
    lines.append(f"*From `reports/bench.json` (rounding benchmark, {found[0]['generated_at']}).*")
    return "\n".join(lines)


def claims() -> str:
    from eae.evaluation.claims import markdown_table  # the same table as the library's (pipelines.claims)

    return markdown_table(_load(REPORTS / "claims.json"))


TABLES = {"rounding": rounding, "sweeps": sweeps, "table1": table1, "fid": fid, "bench": bench, "scale": scale}
TABLES["claims"] = claims


def render(markdown: str) -> str:
    """The page's markdown with every table marker replaced by its table."""

    def table(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise ValueError(f"docs/hooks.py: unknown table {name!r} (known: {', '.join(TABLES)})")
        kwargs = dict(arg.split("=", 1) for arg in match.group("args").split())
        return TABLES[name](**kwargs)

    return MARKER.sub(table, markdown)


def on_page_markdown(markdown: str, **_: object) -> str:
    return render(markdown)
