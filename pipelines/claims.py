"""reports/claims.json: the paper's claims (``eae.evaluation.claims``) judged from the committed result cells.

    python -m pipelines.claims [--reports reports] [--output reports/claims.json] [--note TEXT]

Reads every dataset's Table 1 (reports/table1.json, reports/table1-<dataset>.json: setting ``default``)
and every sweep (reports/sweeps/<setting>[-<tag>].json, written by scripts/sweep_eae.sh), and writes the
verdict of each claim on each dataset with the figures that decided it, the rules, and where each cell
came from (file, commit, date, seeds, overrides and the protocol its table recorded). Run at the end of
``make table1`` (``pipelines.orchestration.table1``, so after every sweep setting too).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from eae.errors import EAEError
from eae.evaluation import claims
from eae.io import read_json, write_json

REPORTS = Path("reports")
OUTPUT = REPORTS / "claims.json"
NO_PROTOCOL = (
    "no protocol recorded in the table: its cells were trained with the loop and sampler of commit {baseline} "
    "(generated {generated_at}), which need not be today's defaults"
)


def tables(reports: str | Path = REPORTS) -> list[tuple[str, str, dict]]:
    """(source path, setting, table) of every result table under ``reports``."""
    reports = Path(reports)
    found = [reports / "table1.json", *sorted(reports.glob("table1-*.json"))]
    out = [(p.as_posix(), claims.DEFAULT, read_json(p)) for p in found if p.is_file()]
    out += [
        (p.as_posix(), claims.setting_of(p.stem), read_json(p)) for p in sorted((reports / "sweeps").glob("*.json"))
    ]
    return out


def source_facts(source: str, setting: str, table: Mapping) -> dict:
    """What a reader needs to judge a table's cells: where, when, which seeds, overrides and protocol."""
    protocol = table.get("protocol")
    return {
        "file": source,
        "setting": setting,
        "dataset": table.get("dataset"),
        "generated_at": table.get("generated_at"),
        "baseline": table.get("baseline"),
        "seeds": table.get("seeds"),
        "objectives": [r["objective"] for r in table.get("rows", [])],
        "overrides": table.get("overrides", []),
        "protocol": protocol if protocol is not None else NO_PROTOCOL.format(**{"baseline": None, **table}),
    }


def build(reports: str | Path = REPORTS, note: str | None = None) -> dict:
    """The claims record: verdicts per claim and dataset, the rules, the sources."""
    found = tables(reports)
    cells = claims.cells_from_tables(found)
    datasets = list(dict.fromkeys([*claims.DATASETS, *(d for d, *_ in cells)]))
    return {
        "rules": claims.RULES,
        "min_seeds": claims.MIN_SEEDS,
        "ablations": claims.ABLATIONS,
        "datasets": datasets,
        "claims": claims.evaluate(cells, datasets),
        "sources": [source_facts(*t) for t in found],
        "note": note,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def verdicts(record: Mapping) -> dict[tuple[int, str], str]:
    """(claim id, dataset) -> verdict: what a test compares between a record and its recomputation."""
    return {(c["id"], d): j["verdict"] for c in record["claims"] for d, j in c["datasets"].items()}


def write_claims(reports: str | Path = REPORTS, output: str | Path | None = None, note: str | None = None) -> dict:
    """Build the record from ``reports`` and write it atomically to ``output`` (default reports/claims.json)."""
    record = build(reports, note)
    write_json(output or Path(reports) / OUTPUT.name, record)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.claims", description=__doc__.splitlines()[0])
    ap.add_argument("--reports", default=str(REPORTS), help="folder of table1*.json and sweeps/")
    ap.add_argument("--output", default=None, help="default: <reports>/claims.json")
    ap.add_argument("--note", default=None, help="a remark stored with the verdicts (e.g. on the cells' protocol)")
    args = ap.parse_args(argv)
    try:
        record = write_claims(args.reports, args.output, args.note)
    except EAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for c in record["claims"]:
        print(f"claim {c['id']}: " + ", ".join(f"{d} {j['verdict']}" for d, j in c["datasets"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
