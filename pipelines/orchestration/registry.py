"""The model registry: the promoted generator as a GTO version in stage ``prod`` (git tags), so a clone, a CI
job or another repository fetches it by name (no Prefect here; GTO's Python API and git).

DVC's convention: dvc.yaml declares the artifacts (``artifacts:`` eae-generator -> models/generator.onnx and
eae-generator-card -> models/generator.json, the card the runtime checks the model against); GTO turns
annotated git tags into versions and stages:

    eae-generator@v0.0.1      version: a commit whose dvc.lock pins that generator
    eae-generator#prod#1      stage assignment

    dvc artifacts get REPO eae-generator --stage prod            # the file, from REPO's DVC cache or remote
    dvc artifacts get REPO eae-generator-card --stage prod
    python -c "import dvc.api; print(dvc.api.artifacts_show('eae-generator', stage='prod', repo='REPO'))"

A version is a commit. ``register_promoted`` commits what records the candidate (dvc.lock, params.yaml and the
results DVC keeps in git: the stages' uncached outputs) when HEAD does not already pin its generator, then
registers a version of both artifacts at that commit and assigns them ``prod``. Only those paths are
committed: other changes of the working tree stay as they were. The DVC cache holds the files; push it
(``dvc push``, the flow's --push) and the git tags (``git push --tags``) for another machine to fetch them.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from eae.errors import EAEError
from pipelines import dvcfile
from pipelines._stage import GENERATOR_ONNX, dvc_out_md5

ARTIFACTS = {"eae-generator": GENERATOR_ONNX, "eae-generator-card": "models/generator.json"}
STAGE = "prod"
ALWAYS_COMMITTED = ("dvc.lock", "params.yaml")


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise EAEError(f"git {' '.join(args)} failed in {repo}: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def git_tracked_results(repo: Path) -> list[str]:
    """The outputs dvc.yaml keeps in git (``cache: false``): metrics and plots of its stages."""
    return dvcfile.uncached_outputs(repo)


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def head_md5(repo: Path, out: str) -> str | None:
    """The md5 of ``out`` in HEAD's dvc.lock (None without a commit, a committed dvc.lock or that output)."""
    text = git(repo, "show", "HEAD:dvc.lock", check=False)
    if not text:
        return None
    return dvcfile.locked_md5(text, out)


def commit_candidate(repo: Path, message: str) -> bool:
    """Commit dvc.lock, params.yaml and the git-tracked results (only those paths) when HEAD's dvc.lock does not
    pin the workspace's generator; returns whether a commit was made."""
    md5 = dvc_out_md5(GENERATOR_ONNX, repo)
    if md5 is None:
        raise EAEError(f"{GENERATOR_ONNX} is not in dvc.lock: run the pipeline with DVC (dvc repro) first")
    if md5_file(repo / GENERATOR_ONNX) != md5:
        raise EAEError(f"{GENERATOR_ONNX} is not the file dvc.lock pins: run dvc repro (or dvc commit) first")
    if head_md5(repo, GENERATOR_ONNX) == md5:
        return False
    paths = [p for p in (*ALWAYS_COMMITTED, *git_tracked_results(repo)) if (repo / p).exists()]
    git(repo, "add", "--", *paths)
    git(repo, "commit", "--quiet", "--no-verify", "-m", message, "--", *paths)
    return True


def register_promoted(repo: str | Path, message: str = "eae-retrain: promoted generator") -> dict:
    """Register the workspace's generator (and its card) as a new GTO version at a commit that pins it and
    assign stage ``prod``; a version already registered at that commit is reused. Returns
    ``{"registered", "commit", "committed", "tags", "artifacts": {name: {"version", "stage", "path"}}}``
    (``tags``: the git tags this call created), or ``{"registered": False, "reason"}`` outside a git
    repository."""
    import gto.api
    from gto.exceptions import WrongArgs

    repo = Path(repo).resolve()
    if git(repo, "rev-parse", "--is-inside-work-tree", check=False) != "true":
        return {"registered": False, "reason": f"{repo} is not a git repository: no registry"}
    before = set(git(repo, "tag", "--list").split())
    committed = commit_candidate(repo, message)
    commit = git(repo, "rev-parse", "HEAD")
    artifacts = {}
    tags = git(repo, "tag", "--points-at", "HEAD").split()
    for name, path in ARTIFACTS.items():
        registered = [tag.split("@", 1)[1] for tag in tags if tag.startswith(f"{name}@")]
        version = registered[0] if registered else gto.api.register(repo, name, "HEAD", message=message).version
        try:
            gto.api.assign(repo, name, STAGE, version=version, message=f"{message}: {name} {version} -> {STAGE}")
        except WrongArgs as exc:
            if "already in stage" not in str(exc):
                raise EAEError(f"gto assign {name} {version} {STAGE}: {exc}") from None
        artifacts[name] = {"version": version, "stage": STAGE, "path": path}
    made = sorted(set(git(repo, "tag", "--list").split()) - before)
    return {"registered": True, "commit": commit, "committed": committed, "tags": made, "artifacts": artifacts}


def prod_version(repo: str | Path, name: str = "eae-generator") -> dict | None:
    """``dvc.api.artifacts_show`` of the artifact's ``prod`` version ({"rev", "path"}), or None when none is."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return dvc.api.artifacts_show(name, stage=STAGE, repo=str(repo))
    except DvcException:
        return None
