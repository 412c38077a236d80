"""Table 1 of the paper as one command: every objective trained with the same configuration, over
several training seeds, as DVC experiments; the aggregate goes to reports/table1.json and the
report's "Table 1" section.

    python -m pipelines.orchestration.table1 [--seeds 3] [--objectives eae,vae,...] [--jobs 1] [--set key=value ...]
    make table1 SEEDS=3

Each cell (objective O, seed S) is one experiment named ``t1-O-sS``:
``dvc exp run --queue -n t1-O-sS -S model.objective=O -S seed=S [-S key=value ...] evaluate``
(the pipeline up to ``evaluate``: export and report are not needed for the table). The queue
runs with ``dvc queue start -j JOBS``; every cell shows up in ``dvc exp show``. Run again after an
interruption, the command resumes: a cell whose experiment already finished on this commit with
the same objective, seed and ``--set`` values is kept, not retrained (``--force`` reruns every
cell). The data split and the
feature extractor do not depend on ``seed`` (``data.split_seed``, ``classifier.seed``), so every
cell is scored against the same test set with the same extractor.

Why experiments and not a ``foreach``/``matrix`` stage: a cell is the whole pipeline (train,
densities, evaluation) with other parameters, which is what DVC experiments are for; a matrix
would copy every stage per objective and seed into dvc.yaml and keep 33 sets of outputs in the
workspace.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from tqdm import tqdm

from eae.errors import EAEError
from eae.evaluation.results import read_results
from eae.evaluation.table1 import METRICS, aggregate, wins
from eae.io import write_json
from eae.models.objectives.weights import WEIGHTS as OBJECTIVES
from eae.reporting.experiments import parse_exp_show
from pipelines._stage import FID, TABLE1, log
from pipelines.claims import write_claims
from pipelines.config import ConfigError, load_params

PREFIX = "t1"
QUEUE_LOG = Path(".dvc/tmp/eae/evaluation/table1-queue.log")
FINAL = ("success", "failed")
WORKER_GRACE_S = 60.0  # a worker just started may not show in `dvc queue status` yet


def dvc_exe() -> str:
    exe = Path(sys.executable).with_name("dvc")
    return str(exe) if exe.exists() else (shutil.which("dvc") or "dvc")


def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([dvc_exe(), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise EAEError(f"dvc {' '.join(args[:3])} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc


def cell_name(objective: str, seed: int, prefix: str = PREFIX) -> str:
    return f"{prefix}-{objective}-s{seed}"


def experiment_records() -> list[dict]:
    proc = dvc("exp", "show", "--json")
    try:
        return parse_exp_show(json.loads(proc.stdout))
    except (json.JSONDecodeError, ValueError) as exc:
        raise EAEError(f"cannot read dvc exp show --json: {exc}") from None


def head_rev() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise EAEError("Table 1 runs DVC experiments, which need a git repository with at least one commit")
    return proc.stdout.strip()


def queue_states(names: set[str]) -> tuple[dict[str, str], int | None]:
    """(name -> state (queued, running, success, failed) of our tasks, number of active + idle
    workers) from ``dvc queue status``; the worker count is None when the line is missing."""
    states, workers = {}, None
    for line in dvc("queue", "status").stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] in names:
            states[fields[1]] = fields[-1].lower()
        elif match := re.match(r"Worker status: (\d+) active, (\d+) idle", line.strip()):
            workers = int(match.group(1)) + int(match.group(2))
    return states, workers


def start_workers(jobs: int) -> None:
    # The queue's workers run on in the background and inherit the output streams: never pipe them here.
    QUEUE_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(QUEUE_LOG, "a") as out:
        if subprocess.run([dvc_exe(), "queue", "start", "-j", str(jobs)], stdout=out, stderr=out).returncode:
            raise EAEError(f"dvc queue start failed: see {QUEUE_LOG}")


def expected_params(objective: str, seed: int, overrides: list[str]) -> dict:
    """The flattened params a finished cell must show in ``dvc exp show`` to be kept."""
    expected = {"model.objective": objective, "seed": seed}
    for item in overrides:
        key, _, value = item.partition("=")
        expected[key] = yaml.safe_load(value)
    return expected


def finished_cells(cells: list[tuple[str, int]], overrides: list[str], baseline: str, prefix: str = PREFIX) -> set[str]:
    """Names of the cells already done on ``baseline`` with the same objective, seed and overrides."""
    wanted = {cell_name(o, s, prefix): expected_params(o, s, overrides) for o, s in cells}
    done = set()
    for r in experiment_records():
        params = wanted.get(r["name"])
        if (
            params is not None
            and r["kind"] == "experiment"
            and r["baseline"] == baseline[:7]
            and r["status"] in (None, "success")
            and r["metrics"]
            and all(r["params"].get(k) == v for k, v in params.items())
        ):
            done.add(r["name"])
    return done


def run_cells(
    cells: list[tuple[str, int]],
    overrides: list[str],
    jobs: int,
    poll_s: float,
    prefix: str = PREFIX,
    keep: set[str] = frozenset(),
) -> list[str]:
    """Queue and run the cells not in ``keep``; returns the names of those that failed."""
    cells = [(o, s) for o, s in cells if cell_name(o, s, prefix) not in keep]
    if not cells:
        return []
    names = {cell_name(o, s, prefix) for o, s in cells}
    stale = [r["name"] for r in experiment_records() if r["kind"] == "experiment" and r["name"] in names]
    if stale:  # unfinished or outdated results of these cells: replaced
        dvc("exp", "remove", *stale)
    waiting = [n for n, state in queue_states(names)[0].items() if state == "queued"]
    if waiting:  # left in the queue by an earlier run that was killed: queued again below
        dvc("queue", "remove", *waiting)
    for objective, seed in cells:
        args = [
            "exp",
            "run",
            "--queue",
            "-n",
            cell_name(objective, seed, prefix),
            "-S",
            f"model.objective={objective}",
            "-S",
            f"seed={seed}",
        ]
        for item in overrides:
            args += ["-S", item]
        dvc(*args, "evaluate")
    log.info("queued %d experiments; running them with dvc queue start -j %d", len(cells), jobs)
    start_workers(jobs)
    started = time.monotonic()
    done: dict[str, str] = {}
    try:
        with tqdm(total=len(cells), desc="table1", unit="run") as bar:
            while len(done) < len(names):
                time.sleep(poll_s)
                states, workers = queue_states(names)
                stalled = workers == 0 and "queued" in states.values() and "running" not in states.values()
                if stalled and time.monotonic() - started > WORKER_GRACE_S:
                    # A worker that exited (or was killed) with our cells still queued: start another.
                    log.warning(
                        "no queue worker left with %d cells queued: restarting the workers",
                        list(states.values()).count("queued"),
                    )
                    start_workers(jobs)
                    started = time.monotonic()
                for name, state in states.items():
                    if state in FINAL and name not in done:
                        done[name] = state
                        bar.update(1)
                        if state == "failed":
                            log.error(
                                "%s failed:\n%s",
                                name,
                                "\n".join(dvc("queue", "logs", name, check=False).stdout.strip().splitlines()[-15:]),
                            )
                missing = names - set(states) - set(done)
                if missing and not any(s in ("queued", "running") for s in states.values()):
                    for name in missing:  # gone from the queue without a final state
                        done[name] = "failed"
                        bar.update(1)
    except KeyboardInterrupt:
        dvc("queue", "stop", "--kill", check=False)
        dvc("queue", "remove", "--queued", check=False)
        raise
    return sorted(n for n, s in done.items() if s == "failed")


def collect(cells: list[tuple[str, int]], baseline: str, prefix: str = PREFIX) -> list[dict]:
    by_name = {
        r["name"]: r for r in experiment_records() if r["kind"] == "experiment" and r["baseline"] == baseline[:7]
    }
    runs = []
    for objective, seed in cells:
        record = by_name.get(cell_name(objective, seed, prefix))
        if record is not None and record["metrics"]:
            runs.append(
                {
                    "objective": objective,
                    "seed": seed,
                    "name": record["name"],
                    "rev": record["rev"],
                    "metrics": record["metrics"],
                }
            )
    return runs


def refresh_report() -> None:
    """Re-render reports/index.html with the new table (the report stage reads reports/table1.json)."""
    before = dvc("status", "report", check=False).stdout
    dvc("repro", "report")
    if "changed" not in before:  # the report was up to date, so repro did not rerun it
        dvc("repro", "--force", "--single-item", "report")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging_setup()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the queue like Ctrl-C does
    try:
        build_table(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted: the queue was stopped; finished cells are kept (run the same command again to resume)",
            file=sys.stderr,
        )
        return 130
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipelines.orchestration.table1", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per objective (0 .. N-1)")
    ap.add_argument("--objectives", default="all", help="comma-separated objectives (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="experiments run at once (dvc queue start -j)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for every cell (dvc exp run -S), e.g. train.epochs=10",
    )
    ap.add_argument("--force", action="store_true", help="rerun every cell, also those already finished")
    ap.add_argument("--no-report", action="store_true", help="do not re-render reports/index.html")
    ap.add_argument(
        "--prefix",
        default=PREFIX,
        help="experiment names PREFIX-<objective>-s<seed> (a sweep of settings: one prefix per setting)",
    )
    ap.add_argument("--output", default=TABLE1, help="where the table goes (the report reads reports/table1.json)")
    ap.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def chosen_objectives(args: argparse.Namespace) -> list[str]:
    """The objectives of ``--objectives``, after checking ``--seeds``, ``--jobs`` and ``--set``."""
    objectives = list(OBJECTIVES) if args.objectives == "all" else [o.strip() for o in args.objectives.split(",")]
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ConfigError(f"--objectives: unknown {', '.join(unknown)}; known: {', '.join(OBJECTIVES)}")
    if args.seeds < 1 or args.jobs < 1:
        raise ConfigError("--seeds and --jobs must be at least 1")
    for item in args.set:
        key, sep, _ = item.partition("=")
        if not sep or key in ("model.objective", "seed"):
            raise ConfigError(f"--set {item!r}: expected key=value for a key other than model.objective and seed")
    return objectives


def build_table(args: argparse.Namespace) -> None:
    """Run the cells that are not finished yet, collect every cell, write the table (and the report)."""
    start = time.perf_counter()
    p = load_params()
    objectives = chosen_objectives(args)
    baseline = head_rev()
    cells = [(o, s) for o in objectives for s in range(args.seeds)]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.prefix):
        raise ConfigError(f"--prefix {args.prefix!r}: letters, digits, '_', '.', '-' only")
    keep = set() if args.force else finished_cells(cells, args.set, baseline, args.prefix)
    if keep:
        log.info(
            "resuming: %d of %d cells already finished on this commit (--force reruns them)", len(keep), len(cells)
        )
    failed = run_cells(cells, args.set, args.jobs, args.poll, args.prefix, keep)
    runs = collect(cells, baseline, args.prefix)
    table = aggregate(runs, objectives, p.data.source)
    table.update(table_facts(args, p, objectives, baseline, runs, failed, table, start))
    write_json(args.output, table)
    write_claims()  # reports/claims.json from every table, before the report that shows it (pipelines.claims)
    log.info(
        "wrote %s: %d objectives x %d seeds in %.0f s%s",
        args.output,
        len(objectives),
        args.seeds,
        time.perf_counter() - start,
        f"; failed: {', '.join(failed)}" if failed else "",
    )
    if not args.no_report and Path(args.output) == Path(TABLE1):
        refresh_report()
    if failed:
        raise EAEError(
            f"{len(failed)} cell(s) failed ({', '.join(failed)}): see `dvc queue logs NAME`; "
            f"{args.output} holds the others"
        )


def table_facts(
    args: argparse.Namespace, p, objectives: list[str], baseline, runs: list, failed: list, table: dict, start: float
) -> dict:
    """What the table records beside the scores: settings, provenance, the EAE's wins, timing."""
    protocol = read_results(FID).protocol if Path(FID).exists() else {}
    return {
        "dataset": p.data.source,
        "seeds": list(range(args.seeds)),
        "overrides": args.set,
        "feature_extractor": p.eval.feature_extractor,
        "metric": protocol.get("metric_name")
        if protocol.get("feature_extractor") == p.eval.feature_extractor
        else None,
        "baseline": baseline,
        "prefix": args.prefix,
        "experiments": [r["name"] for r in runs],
        "failed": failed,
        "eae_wins": {f"{m}.{c}": wins(table, "eae", c, m)["wins"] for m in METRICS for c in ("isotropic", "gmm")}
        if "eae" in objectives
        else None,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def logging_setup() -> None:
    import logging

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    log.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
