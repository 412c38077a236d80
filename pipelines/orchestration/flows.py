"""Prefect orchestration: scheduled retraining that drives the DVC stages, with metric-gated promotion.

    python -m pipelines.orchestration.flows retrain [--pull] [--push] [--set entropy_weight=0.5 ...] [--no-promote]
                                                    [--from-workspace]
    python -m pipelines.orchestration.flows serve --cron "0 3 * * 1"      # needs PREFECT_API_URL (make prefect-server)

DVC stays the source of truth for what to rebuild: each task runs ``dvc repro <stage>``
(a no-op when nothing changed). Prefect schedules, retries pull/push, and records the runs.

**It commits and tags.** A promoted generator is registered as a GTO version in stage ``prod``
(pipelines/orchestration/registry.py): a git commit of dvc.lock, params.yaml and the results, and four
tags (a version and a ``prod`` assignment of the generator and of its card). ``retrain`` says so before
it starts and names the commit and the tags it made. It refuses a workspace whose params.yaml differs
from HEAD (e.g. after ``dvc exp run -S ...``) unless ``--from-workspace`` (or ``--no-promote``), and a first
promotion must be at least as good as the committed scores (pipelines/orchestration/promote.py).

``retrain`` sets its own Prefect settings: analytics off and, without a configured Prefect API
(PREFECT_API_URL), a temporary Prefect home and SQLite database of its own for the temporary server.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import yaml

# `retrain` without PREFECT_API_URL starts a temporary Prefect server; on a busy machine it can take
# longer than Prefect's 20 s default to answer. No usage data is sent (the server's analytics, the SDK's
# telemetry, which starts when prefect is imported). Set before Prefect reads its settings; yours win.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from eae.errors import EAEError
from eae.io import read_json, write_json
from pipelines._stage import dvc_stages
from pipelines.config import ConfigError
from pipelines.orchestration import artifacts, registry
from pipelines.orchestration import promote as promotion
from pipelines.orchestration.oneshot import announcement, own_prefect_settings, summary
from pipelines.orchestration.workspace import (
    LOCK_FILE,
    ModifiedWorkspace,
    WorkspaceBusy,
    held_lock_fds,
    require_committed_params,
    validate,
    workspace_lock,
)

__all__ = ["LOCK_FILE", "ModifiedWorkspace", "StageFailed", "WorkspaceBusy", "retrain", "workspace_lock"]

REPO = Path(__file__).resolve().parents[2]  # the repository (this file: pipelines/orchestration/flows.py)
RUNNING = re.compile(r"Running stage '([^']+)'")
FAILED = re.compile(r"failed to reproduce '([^']+)'")


class StageFailed(RuntimeError):
    """A DVC command exited non-zero; the message names the stage and quotes DVC's error."""


def run_dvc(args: list[str], repo: Path, what: str) -> str:
    """Run a DVC command, streaming its output into the Prefect log; raise StageFailed on failure,
    naming the stage that failed (``dvc repro train`` also reruns the upstream stages DVC finds
    changed, e.g. all of them when the DVC cache is missing)."""
    logger = get_run_logger()
    logger.info("$ %s", " ".join(args))
    tail: deque[str] = deque(maxlen=40)
    running = None
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # The workspace lock's descriptor goes along: the lock stays held while DVC runs, even if this
    # process is killed.
    proc = subprocess.Popen(
        args,
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        pass_fds=held_lock_fds(),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail.append(line)
            logger.info(line)
            if match := RUNNING.search(line):
                running = match.group(1)
    code = proc.wait()
    if code != 0:
        errors = [ln for ln in tail if "error" in ln.lower()] or list(tail)[-5:]
        failed = next((m.group(1) for ln in reversed(tail) if (m := FAILED.search(ln))), None) or running
        if failed and f"'{failed}'" not in what:
            what = f"stage '{failed}' (run by {what})"
        raise StageFailed(f"{what} failed (exit {code}): {' | '.join(errors[-3:])}")
    return "\n".join(tail)


@task(name="dvc pull", retries=3, retry_delay_seconds=10)
def dvc_pull(repo: str) -> None:
    run_dvc(["dvc", "pull"], Path(repo), "dvc pull")


@task(name="dvc push", retries=3, retry_delay_seconds=10)
def dvc_push(repo: str) -> None:
    run_dvc(["dvc", "push"], Path(repo), "dvc push")


@task(name="dvc repro", retries=0)  # a failed training is never retried blindly
def repro_stage(repo: str, stage: str, force: bool = False) -> str:
    args = ["dvc", "repro", "--force", "--single-item", stage] if force else ["dvc", "repro", stage]
    return run_dvc(args, Path(repo), f"stage '{stage}'")


@task(name="dvc exp run", retries=0)
def experiment(repo: str, set_params: dict[str, object], name: str | None) -> str:
    args = ["dvc", "exp", "run"]
    for key, value in set_params.items():
        args += ["-S", f"{key}={value}"]
    if name:
        args += ["--name", name]
    return run_dvc(args, Path(repo), f"experiment {set_params}")


@task(name="promote if better")
def promote(repo: str, metric: str) -> dict:
    decision = promotion.promote_if_better(repo, metric)
    get_run_logger().info(
        "promotion: %s (%s)", "promoted" if decision["promoted"] else "kept previous", decision["reason"]
    )
    return decision


@task(name="register in the model registry")
def register(repo: str, decision: dict) -> dict:
    """A promoted generator becomes a GTO version in stage prod (git tags; dvc.yaml's artifacts). The outcome
    goes into the decision and reports/promotion.json."""
    logger = get_run_logger()
    logger.warning(
        "promoted: committing dvc.lock, params.yaml and the results in %s and tagging a %s version of %s",
        repo,
        registry.STAGE,
        " and ".join(registry.ARTIFACTS),
    )
    try:
        outcome = registry.register_promoted(
            repo, f"eae-retrain: promoted generator {decision['candidate']['sha256'][:12]}"
        )
    except EAEError as exc:  # the promotion stands; the record and the UI say why the registry has no version
        outcome = {"registered": False, "reason": str(exc)}
    if outcome["registered"]:
        versions = ", ".join(f"{name} {a['version']}" for name, a in outcome["artifacts"].items())
        logger.info(
            "registered %s in stage %s at commit %s (%s); tags made: %s",
            versions,
            registry.STAGE,
            outcome["commit"][:12],
            "new" if outcome["committed"] else "HEAD already pinned the generator",
            ", ".join(outcome["tags"]) or "none",
        )
    else:
        logger.warning("not registered: %s", outcome["reason"])
    decision["registry"] = outcome
    write_json(Path(repo) / "reports" / "promotion.json", decision)
    return decision


@task(name="publish artifacts")
def publish_artifacts(repo: str, decision: dict | None) -> None:
    """This run's Prefect artifacts under stable keys (table eae-fid, markdown eae-promotion; see
    pipelines.orchestration.artifacts) and, when the new model lost to the promoted one, the event
    eae.metric.regressed that the automation of pipelines.orchestration.alerts turns into a notification."""
    root = Path(repo)
    promoted = (decision.get("previous") or {}).get("evaluation") if decision else artifacts.promoted_evaluation(root)
    create_table_artifact(
        artifacts.fid_table(read_json(root / "reports" / "fid.json"), promoted),
        key=artifacts.FID_KEY,
        description="Fréchet distance (and any other metric of "
        "reports/fid.json) per sampler: this run vs the model promoted before it",
    )
    revision = decision["revision"] if decision else promotion.revision(root)
    create_markdown_artifact(
        artifacts.promotion_markdown(root, decision, revision),
        key=artifacts.PROMOTION_KEY,
        description="Promotion decision, revisions and where the report is",
    )
    payload = artifacts.regression(decision)
    if payload is not None:
        get_run_logger().warning("metric regression: %s", payload["reason"])
        emit_event(
            artifacts.REGRESSED_EVENT,
            resource={"prefect.resource.id": f"eae.generator.{root.name}", "prefect.resource.name": str(root)},
            payload=payload,
        )


@flow(name="eae-retrain", log_prints=True)
def retrain(
    repo: str = str(REPO),
    pull: bool = False,
    push: bool = False,
    set_params: dict[str, object] | None = None,
    experiment_name: str | None = None,
    promote_if_better: bool = True,
    metric: str = "gmm",
    force: bool = False,
    lock_wait_s: float = 0.0,
    from_workspace: bool = False,
) -> dict:
    """Rebuild the pipeline (one task per DVC stage), then promote the generator if it is better (a
    promotion commits and tags: pipelines/orchestration/registry.py).

    set_params: run the whole pipeline as a DVC experiment (`dvc exp run -S key=value ...`) instead.
    force: rerun every stage even if DVC considers it up to date.
    from_workspace: promote (and commit) even though params.yaml differs from HEAD.
    """
    logger = get_run_logger()
    root = Path(repo).resolve()
    validate(root, set_params)  # one line before DVC runs (the check stage would refuse them too)
    if promote_if_better and not from_workspace:
        require_committed_params(root)
    with workspace_lock(root, lock_wait_s):
        if pull:
            dvc_pull(str(root))
        ran: list[str] = []
        # A failed stage leaves the last good outputs: dvc.yaml's outputs are persist: true and every
        # stage replaces its outputs atomically when it succeeds.
        if set_params:
            experiment(str(root), set_params, experiment_name)
            ran.append("experiment")
        else:
            for stage in dvc_stages(root):
                repro_stage.with_options(task_run_name=f"dvc repro {stage}")(str(root), stage, force)
                ran.append(stage)
        decision = promote(str(root), metric) if promote_if_better else None
        if decision and decision["promoted"]:
            decision = register(str(root), decision)
        publish_artifacts(str(root), decision)
        if push:
            dvc_push(str(root))
    logger.info("retrain finished: %s", ", ".join(ran))
    return {"stages": ran, "promotion": decision}


def _parse_sets(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: the value is not valid YAML") from None
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipelines.orchestration.flows", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("retrain", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--repo", default=str(REPO))
        p.add_argument("--pull", action="store_true")
        p.add_argument("--push", action="store_true")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run as a DVC experiment")
        p.add_argument("--no-promote", action="store_true")
        p.add_argument("--metric", default="gmm")
        p.add_argument("--force", action="store_true")
        p.add_argument(
            "--from-workspace",
            action="store_true",
            help="promote (commit and tag) even though params.yaml differs from HEAD",
        )
        if name == "serve":
            when = p.add_mutually_exclusive_group(required=True)
            when.add_argument("--cron", help='e.g. "0 3 * * 1" (Mondays 03:00)')
            when.add_argument("--interval", type=float, help="seconds between runs")
            p.add_argument("--name", default="eae-retrain")
    return ap


def flow_parameters(args: argparse.Namespace) -> dict:
    """The flow's parameters from the command line; bad parameters, or uncommitted ones to promote, raise
    ConfigError (one line and exit 2 before the flow, or DVC, starts)."""
    sets = _parse_sets(args.set) or None
    validate(args.repo, sets)
    if args.command == "retrain" and not args.no_promote and not args.from_workspace:
        require_committed_params(args.repo)
    return {
        "repo": args.repo,
        "pull": args.pull,
        "push": args.push,
        "set_params": sets,
        "promote_if_better": not args.no_promote,
        "metric": args.metric,
        "force": args.force,
        "from_workspace": args.from_workspace,
    }


def retrain_once(args: argparse.Namespace, params: dict) -> int:
    """``retrain``: one run now, with this process's own Prefect settings; its summary, or one error line."""
    try:  # another retrain holds the workspace: one line before Prefect starts (the flow takes the lock)
        with workspace_lock(Path(args.repo)):
            pass
    except WorkspaceBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.no_promote:
        print(announcement(args.repo), flush=True)
    try:
        with own_prefect_settings():
            result = retrain(**params)
    except (StageFailed, WorkspaceBusy, EAEError) as exc:  # ConfigError is an EAEError
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print("\n".join(summary(result)))
    return 0


def serve(args: argparse.Namespace, params: dict) -> int:
    """``serve``: the deployment on a schedule, against a running Prefect server."""
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "error: serve needs a Prefect server: run `make prefect-server` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    # limit=1: this process never starts a scheduled run while the previous one is still going.
    retrain.serve(name=args.name, cron=args.cron, interval=args.interval, parameters=params, limit=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        params = flow_parameters(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return retrain_once(args, params) if args.command == "retrain" else serve(args, params)


if __name__ == "__main__":
    sys.exit(main())
