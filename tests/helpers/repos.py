"""Shared test helpers: a committed copy of the repository with a tiny configuration."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from filelock import FileLock

from pipelines.config import compose_params

ROOT = Path(__file__).resolve().parents[2]  # the repository
# A folder every process of one test session shares: tests/conftest.py makes it in the first process
# and pytest-xdist workers inherit the variable (no EAE_ prefix: that would be a parameter override).
SHARED_DIR_VAR = "EAETESTS_SHARED_DIR"
TINY = {
    "model": {"latent_dim": 4, "encoder_channels": [8, 16], "decoder_channels": [16, 8]},
    "train": {"epochs": 2},
    "density": {"gmm_components": 3},
    "classifier": {"epochs": 2},
    "eval": {"n_samples": 300},
    "report": {"n_images": 16},
    "objectives": {
        "two_stage_vae": {
            "second_stage": {"latent_dim": None, "hidden": 16, "layers": 1, "epochs": 3, "batch_size": 100, "lr": 0.001}
        }
    },
}


def repo_env() -> dict[str, str]:
    """Environment for DVC/git subprocesses: this venv first on PATH, no EAE_ overrides."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "DVC_NO_ANALYTICS": "1",
    }
    return {k: v for k, v in env.items() if not k.startswith("EAE_")}


def start_stage(name: str, cwd: Path) -> subprocess.Popen:
    """``python -m pipelines.<name>`` in ``cwd`` (this checkout's code, no EAE_ overrides), output kept
    for ``finish_stage``; started, not waited for, so a test can signal it."""
    return subprocess.Popen(
        [sys.executable, "-m", f"pipelines.{name}"],
        cwd=cwd,
        env={**repo_env(), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_stage(proc: subprocess.Popen) -> str:
    """Wait for a ``start_stage`` process; its output, or a failed assertion with its last lines."""
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env or repo_env(), capture_output=True, text=True)
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


# Results measured on the full-size project (make table1, make bench), committed for the report:
# not results of a tiny copy, whose report would show them.
MEASURED_RESULTS = {"reports/table1.json", "reports/bench.json"}


def make_tiny_repo(
    dst: Path, overrides: dict | None = None, params_file: str = "params.yaml", tiny: bool = True
) -> Path:
    """Copy the tracked files to dst, compose params.yaml from ``params_file`` (e.g. configs/celeba.yaml,
    over the defaults), shrink it to TINY (if ``tiny``) and apply ``overrides``, then git init and commit."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file() and name not in MEASURED_RESULTS:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    if params_file != "params.yaml":
        compose_params(dst / params_file, dst / "params.yaml")
    params = yaml.safe_load((dst / "params.yaml").read_text())
    for changes in (TINY if tiny else {}, overrides or {}):
        for section, values in changes.items():
            if isinstance(values, dict):
                params[section].update(values)
            else:
                params[section] = values
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], dst)
    # an identity of its own: the retrain flow commits and tags (model registry) in-process, without repo_env
    sh(["git", "config", "user.name", "eae tests"], dst)
    sh(["git", "config", "user.email", "tests@example.invalid"], dst)
    sh(["git", "add", "-A"], dst)
    sh(["git", "commit", "-qm", "tiny"], dst)
    return dst


def clone(origin: Path, dst: Path) -> Path:
    """A fresh git clone of ``origin`` (DVC outputs absent until pulled or reproduced)."""
    sh(["git", "clone", "-q", str(origin), str(dst)], origin.parent)
    return dst


def shared_dir() -> Path:
    """The session's shared folder; made here (and removed at exit) when no conftest made one."""
    if SHARED_DIR_VAR not in os.environ:
        os.environ[SHARED_DIR_VAR] = tempfile.mkdtemp(prefix="eae-tests-shared-")
        atexit.register(shutil.rmtree, os.environ[SHARED_DIR_VAR], True)
    return Path(os.environ[SHARED_DIR_VAR])


def reproduced_tiny_repo(dst: Path, overrides: dict | None = None) -> Path:
    """``make_tiny_repo(dst, overrides)`` after ``dvc repro`` (its results not committed), copied to
    ``dst`` (which must not exist). The first call per ``overrides`` in a test session runs the
    pipeline once, under a file lock in the folder every pytest-xdist worker shares (tests/conftest.py);
    every later call, in any worker, copies that repository (seconds instead of a minute)."""
    key = hashlib.sha256(json.dumps(overrides or {}, sort_keys=True).encode()).hexdigest()[:16]
    src = shared_dir() / f"reproduced-{key}"
    done = src.with_name(src.name + ".done")
    with FileLock(src.with_name(src.name + ".lock")):
        if not done.exists():
            shutil.rmtree(src, ignore_errors=True)  # a build that failed in another test
            src.mkdir()
            make_tiny_repo(src, overrides)
            sh(["dvc", "repro"], src)
            done.touch()
    shutil.copytree(src, dst, symlinks=True)
    return dst
