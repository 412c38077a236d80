"""The sweep table: every ``reports/sweeps/*.json`` (written by scripts/sweep_eae.sh) as one Markdown table,
setting x objective -> mean ± std over seeds of FD and KID per sampler column.

    python scripts/sweep_table.py [reports/sweeps] [--columns gmm,isotropic,flow]

The docs site renders the same table at build time (docs/hooks.py calls ``markdown_table``), so the
published figures are always those of the JSON files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

METRICS = ("fd", "kid")


def cell(cells: dict, metric: str, column: str) -> str:
    c = cells.get(metric, {}).get(column)
    if not c:
        return ""
    std = f" ± {c['std']:.2f}" if c.get("std") is not None else ""
    return f"{c['mean']:.2f}{std}"


def rows(path: Path, columns: Sequence[str], metrics: Sequence[str] = METRICS) -> list[str]:
    table = json.loads(Path(path).read_text())
    out = []
    for row in table["rows"]:
        cells = row["cells"]
        values = [cell(cells, m, c) for m in metrics for c in columns]
        out.append(f"| {Path(path).stem} | {row['objective']} | {len(row['seeds'])} | " + " | ".join(values) + " |")
    return out


def markdown_table(files: Iterable[Path], columns: Sequence[str], metrics: Sequence[str] = METRICS) -> str:
    """One Markdown table of the aggregates in ``files`` (each an ``eae.evaluation.table1.aggregate`` JSON):
    a row per file and objective, a column per metric and sampler column."""
    head = [f"{m} {c}" for m in metrics for c in columns]
    lines = ["| setting | objective | seeds | " + " | ".join(head) + " |", "|---" * (3 + len(head)) + "|"]
    for f in files:
        lines += rows(f, columns, metrics)
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="reports/sweeps")
    ap.add_argument("--columns", default="gmm,isotropic")
    args = ap.parse_args()
    files = sorted(Path(args.folder).glob("*.json"))
    if not files:
        print(f"error: no sweep results in {args.folder}", file=sys.stderr)
        return 1
    print(markdown_table(files, args.columns.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
