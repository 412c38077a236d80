"""make bench: every benchmark, each in its own process (one after the other, so they do not
disturb each other), collected into reports/bench.json, which the report's "Performance" section
shows.

    python benchmarks/run_all.py [--only NAME,...] [--output reports/bench.json]

``--only`` reruns the named benchmarks and replaces their entries in an existing output, keeping the others
(each entry says when it was measured). Each benchmark measures its contenders side by side in one run (interleaved rounds) and prints
its ratios; this runner prints every ratio with its goal at the end. pythae (the peer library of
the training comparison) is a benchmark-only dependency: ``make bench`` installs it from
requirements-bench.txt.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


from _results import machine  # noqa: E402  (benchmarks/ is this script's folder)

OUTPUT = ROOT / "reports" / "bench.json"
# name: arguments (sized so that `make bench` finishes in minutes on a 2-core CPU; timings: docs/performance.md)
BENCHMARKS = {
    "vs_pythae": ["--rounds", "5"],
    "onnx_generator": ["--seconds", "3"],
    "train_step": ["--arch", "celeba", "--steps", "1", "--blocks", "3", "--warmup", "1"],
    "data_loading": ["--images", "1000"],
    "frechet": ["--dims", "1024", "--samples", "2000", "--repeats", "3"],
    "flow_overhead": [],
    "ddp_scaling": ["--procs", "1", "2", "--steps", "10"],
    "serve_load": ["--seconds", "30", "--clients", "8"],
    "rounding": [],
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_goal(goal: dict | None) -> str:
    return "—" if goal is None else f"{goal['op']} {goal['value']:g}"


def merged(previous: dict, results: list[dict], names: list[str]) -> list[dict]:
    """The new results plus the entries of ``previous`` (an earlier bench.json) of benchmarks not run now,
    as they were measured: with --only, the others; always, those run on their own (benchmarks/scale.py
    merges its entry into the file). In BENCHMARKS' order, the others after them."""
    kept = [
        {"generated_at": previous.get("generated_at"), **b}
        for b in previous.get("benchmarks", [])
        if b["benchmark"] not in names
    ]
    order = {name: i for i, name in enumerate(BENCHMARKS)}
    return sorted(kept + results, key=lambda b: order.get(b["benchmark"], len(order)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated benchmark names (default: all)")
    ap.add_argument("--output", default=str(OUTPUT))
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            print(f"=== {name}", flush=True)
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *BENCHMARKS[name], "--json", str(out)],
                cwd=ROOT,
            )
            seconds = time.perf_counter() - t
            if proc.returncode != 0 or not out.exists():
                failures.append(name)
                results.append(
                    {
                        "benchmark": name,
                        "rows": [],
                        "seconds": round(seconds, 1),
                        "error": f"exit code {proc.returncode}",
                        "generated_at": now(),
                    }
                )
                continue
            results.append({**json.loads(out.read_text()), "seconds": round(seconds, 1), "generated_at": now()})
    previous = json.loads(Path(args.output).read_text()) if Path(args.output).exists() else {}
    report = {
        "machine": machine(),
        "generated_at": now(),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "benchmarks": merged(previous, results, names),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'measure':58s} {'value':>12s}  {'goal':>8s}  {'spread':>17s}  met")
    for result in results:
        for r in result["rows"]:
            spread = "" if r["spread"] is None else f"{r['spread'][0]:.3g}-{r['spread'][1]:.3g}"
            met = {True: "yes", False: "NO", None: ""}[r["met"]]
            print(
                f"{r['name'][:58]:58s} {r['value']:10.3g} {r['unit'][:2]:2s} {fmt_goal(r['goal']):>8s}  "
                f"{spread:>17s}  {met}"
            )
    print(
        f"\n{args.output} written in {report['wall_seconds']:.0f} s"
        + (f"; failed: {', '.join(failures)}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
