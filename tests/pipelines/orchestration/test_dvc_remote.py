"""A DVC remote (a local folder here; S3 and SSH work alike, README.md) makes a fresh clone
retrain nothing: `dvc pull` restores every output, train metrics and dvclive curves included,
and `dvc repro` finds the pipeline up to date. The Prefect flow's --pull and --push use it."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines._stage import dvc_stages
from tests.helpers.repos import clone, repo_env, sh

pytestmark = pytest.mark.slow


def lock_outputs(repo: Path) -> dict[str, str]:
    """path -> md5 of every output (outs and metrics) that dvc.lock records for the stages of dvc.yaml."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for name in dvc_stages(repo) for out in lock[name].get("outs", [])}


def same_tree(a: Path, b: Path) -> bool:
    if a.is_file():
        return b.is_file() and filecmp.cmp(a, b, shallow=False)
    cmp = filecmp.dircmp(a, b)
    return not (cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files) and all(
        same_tree(a / d, b / d) for d in cmp.common_dirs
    )


def test_a_fresh_clone_pulls_every_output_and_retrains_nothing(pushed_origin, tmp_path):
    origin, _ = pushed_origin
    repo = clone(origin, tmp_path / "clone")
    outputs = lock_outputs(repo)
    assert {"models/eae.pt", "dvclive", "reports/train_metrics.json", "reports/index.html"} <= set(outputs)
    assert not (repo / "models/eae.pt").exists() and not (repo / "dvclive").exists()

    sh(["dvc", "pull"], repo)
    for path in outputs:
        assert same_tree(origin / path, repo / path), path
    assert "Data and pipelines are up to date." in sh(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], repo)


def flow(args: list[str], repo: Path, tmp_path: Path) -> str:
    env = {
        **repo_env(),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }  # a busy machine starts it slowly
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.orchestration.flows", "retrain", "--repo", str(repo), *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def test_the_flow_pulls_from_and_pushes_to_the_remote(pushed_origin, tmp_path):
    origin, _ = pushed_origin
    repo = clone(origin, tmp_path / "clone")
    out = flow(["--pull", "--no-promote"], repo, tmp_path)
    assert "Running stage" not in out  # every stage was restored, none reran
    for path in lock_outputs(repo):
        assert (repo / path).exists(), path

    other = tmp_path / "other-store"  # a second, empty remote: the default for this clone only
    sh(["dvc", "remote", "add", "--local", "-d", "other", str(other)], repo)
    flow(["--push", "--no-promote"], repo, tmp_path)
    status = sh(["dvc", "status", "--cloud"], repo)
    assert "Cache and remote 'other' are in sync." in status, status
    assert os.listdir(other)
