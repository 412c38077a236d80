"""The sweep table: every ``reports/sweeps/*.json`` (written by scripts/sweep_eae.sh) as one Markdown table,
setting x objective -> mean ± std over seeds of FD and KID per sampler column.

    python scripts/sweep_table.py [reports/sweeps] [--columns gmm,isotropic,flow]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cell(cells: dict, metric: str, column: str) -> str:
    c = cells.get(metric, {}).get(column)
    if not c:
        return ""
    std = f" ± {c['std']:.2f}" if c.get("std") is not None else ""
    return f"{c['mean']:.2f}{std}"


def rows(path: Path, columns: list[str]) -> list[str]:
    table = json.loads(path.read_text())
    out = []
    for row in table["rows"]:
        cells = row["cells"]
        values = [cell(cells, m, c) for m in ("fd", "kid") for c in columns]
        out.append(f"| {path.stem} | {row['objective']} | {len(row['seeds'])} | " + " | ".join(values) + " |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="reports/sweeps")
    ap.add_argument("--columns", default="gmm,isotropic")
    args = ap.parse_args()
    columns = args.columns.split(",")
    files = sorted(Path(args.folder).glob("*.json"))
    if not files:
        print(f"error: no sweep results in {args.folder}", file=sys.stderr)
        return 1
    head = [f"fd {c}" for c in columns] + [f"kid {c}" for c in columns]
    print("| setting | objective | seeds | " + " | ".join(head) + " |")
    print("|---" * (3 + len(head)) + "|")
    for f in files:
        print("\n".join(rows(f, columns)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
