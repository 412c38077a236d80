"""Issue 32: the README's own path is the safe path. On a tiny repository after `make repro` (`dvc repro`),
each case of the issue runs exactly as a user would type it (plain `dvc repro`, `dvc exp run`, the retrain
flow's command line) and either succeeds or fails with one line naming the cause; afterwards data/prepared/,
models/eae.pt, models/generator.onnx and reports/fid.json are byte-identical to before. One repository for
the whole module, the cases in sequence, each leaving params.yaml as committed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import venv
from pathlib import Path

import pytest
import yaml

from tests.helpers.repos import reproduced_tiny_repo, sh
from tests.helpers.workspace import env, fingerprint

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

KEPT = ("data/prepared", "models/eae.pt", "models/generator.onnx", "reports/fid.json")
RAN = "Running stage '"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A reproduced tiny repository with its results committed, as in a clone of this repository after
    `make repro`: HEAD's dvc.lock and reports/fid.json describe the workspace."""
    root = reproduced_tiny_repo(tmp_path_factory.mktemp("main-path") / "repo")
    sh(["git", "add", "dvc.lock", "reports", "data/.gitignore"], root)
    sh(["git", "commit", "-qm", "the tiny results"], root)
    return root


@pytest.fixture
def kept(repo):
    """The outputs before the case; asserted byte-identical after it, with params.yaml as committed."""
    before = fingerprint(repo, KEPT)
    assert len(before) > 4  # data/prepared holds several files
    yield before
    assert fingerprint(repo, KEPT) == before
    sh(["git", "checkout", "-q", "params.yaml"], repo)


def run(args: list[str], repo: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=600, **kwargs)


def error_line(proc: subprocess.CompletedProcess, pattern: str) -> str:
    """Non-zero exit, no traceback, and exactly one of our `error: ` lines, which contains ``pattern``."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    lines = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and pattern in lines[0], out[-3000:]
    return lines[0]


def stages_run(out: str) -> list[str]:
    return [ln[len(RAN) :].split("'")[0] for ln in out.splitlines() if ln.startswith(RAN)]


def test_a_valid_change_reruns_only_the_stages_that_use_it(repo, kept):
    """The check stage depends on every key; its output never changes, so only report reruns after it."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["report"]["n_images"] = 9
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(sh(["dvc", "repro"], repo)) == ["check", "report"]
    sh(["git", "checkout", "-q", "params.yaml"], repo)
    assert stages_run(sh(["dvc", "repro"], repo)) == ["check", "report"]
    assert "up to date" in sh(["dvc", "status"], repo)


def test_exp_run_with_a_folder_that_does_not_exist(repo, kept):
    """Before: `failed to reproduce 'prepare': [Errno 2] ...` and data/prepared/ gone."""
    proc = run(["dvc", "exp", "run", "-S", "data.source=folder", "-S", "data.root=data/raw/my_images"], repo, env=env())
    line = error_line(proc, "invalid parameter 'data.root': 'data/raw/my_images' is not a folder")
    assert stages_run(proc.stdout + proc.stderr) == ["check"], line


def test_dvc_repro_under_another_python_loses_nothing(repo, kept, tmp_path):
    """Before: the documented one-line error, and models/eae.pt gone. `python` on PATH is a bare venv's."""
    venv.create(tmp_path / "bare", with_pip=False)
    dvc = Path(env()["PATH"].split(os.pathsep)[0]) / "dvc"  # this venv's dvc, run by its path
    bare_env = {k: v for k, v in env().items() if k != "PYTHONPATH"}  # as in a user's shell
    bare_env["PATH"] = f"{tmp_path / 'bare/bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    proc = run([str(dvc), "repro", "-s", "-f", "train"], repo, env=bare_env)
    error_line(proc, "is not this project's environment")


def test_a_misspelt_key_fails_in_one_line(repo, kept):
    """Before: DVC's hint `-S +entropy_weigth=0.5` gave exit 0, every stage skipped and an experiment that
    changed nothing."""
    refused = run(["dvc", "exp", "run", "-S", "entropy_weigth=0.5"], repo, env=env())
    assert refused.returncode != 0 and "+entropy_weigth=0.5" in refused.stderr  # DVC's own refusal
    proc = run(["dvc", "exp", "run", "-S", "+entropy_weigth=0.5"], repo, env=env())
    error_line(proc, "unknown parameter 'entropy_weigth'")
    assert stages_run(proc.stdout + proc.stderr) == ["check"]
    assert sh(["dvc", "exp", "list"], repo).strip() == ""  # no experiment recorded


def test_retrain_refuses_a_modified_workspace_then_runs_clean(repo, kept, tmp_path):
    """Before: the flow committed and tagged without saying so, promoted an uncommitted β = 0.5 as "no
    promoted model yet", and from a shell without PREFECT_SERVER_ANALYTICS_ENABLED printed a `database is
    locked` traceback and a telemetry failure. Its environment here: no PREFECT_ variable, a fresh HOME."""
    clean = {
        "PATH": env()["PATH"],
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": env()["PYTHONPATH"],
        **{k: v for k, v in env().items() if k.startswith("GIT_")},
    }
    command = [str(Path(clean["PATH"].split(os.pathsep)[0]) / "python"), "-m", "pipelines.orchestration.flows"]
    head, tags = sh(["git", "rev-parse", "HEAD"], repo), sh(["git", "tag"], repo)
    (repo / "params.yaml").write_text(
        (repo / "params.yaml").read_text().replace("entropy_weight: 0.2", "entropy_weight: 0.5")
    )
    proc = run([*command, "retrain", "--repo", "."], repo, env=clean)
    line = error_line(proc, "params.yaml differs from HEAD (entropy_weight: 0.2 -> 0.5)")
    assert "--from-workspace" in line and proc.returncode == 2
    assert sh(["git", "rev-parse", "HEAD"], repo) == head and sh(["git", "tag"], repo) == tags

    sh(["git", "checkout", "-q", "params.yaml"], repo)
    proc = run([*command, "retrain", "--repo", "."], repo, env=clean)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for noise in ("Traceback", "database is locked", "telemetry", "sens-o-matic"):
        assert noise not in out, out[-4000:]
    said = proc.stdout.splitlines()
    assert said[0].startswith("retrain: if the new generator is promoted, this commits dvc.lock, params.yaml")
    assert "makes 4 git tags" in said[0]
    made = sorted(set(sh(["git", "tag"], repo).split()) - set(tags.split()))
    assert len(made) == 4 and sh(["git", "rev-parse", "HEAD"], repo) == head  # HEAD pins the generator: tags only
    assert said[-3].startswith("promotion: promoted (gmm ") and "<= committed" in said[-3]  # the committed model
    assert said[-2] == f"registry: no commit needed: HEAD already pins the generator, {head.strip()}"
    assert said[-1] == f"registry: tags made: {', '.join(made)}"
    assert not (tmp_path / "home/.prefect/prefect.db").exists()  # its own temporary database


def test_kill_9_of_dvc_repro_during_train_loses_nothing(repo, kept):
    """`dvc repro` and the stage it runs killed together while train runs: the last good outputs stay,
    with no extra command, and the next `dvc repro` finds train up to date again."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 30  # train reruns, long enough to be killed after its first epoch
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    state = repo / ".dvc/tmp/eae/train_state.pt"
    proc = subprocess.Popen(
        ["dvc", "repro"],
        cwd=repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not state.exists():
        time.sleep(0.2)
    assert proc.poll() is None, "dvc repro ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    assert fingerprint(repo, KEPT) == kept
    state.unlink()
    sh(["git", "checkout", "-q", "params.yaml"], repo)
    assert stages_run(sh(["dvc", "repro"], repo)) == ["check"]  # it had recorded epochs: 30
