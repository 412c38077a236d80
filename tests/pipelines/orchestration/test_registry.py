"""The model registry in a real git repository with a local DVC remote: promotion registers a GTO version in
stage prod at a commit that pins the generator, and `dvc artifacts get ... --stage prod` fetches it from a
clone (its DVC cache) and from a second clone that has only the remote."""

import shutil
import subprocess

import pytest
import yaml

from eae.errors import EAEError
from eae.export.runtime import Generator
from pipelines.orchestration.promote import promote_if_better
from pipelines.orchestration.registry import ARTIFACTS, git_tracked_results, prod_version, register_promoted
from tests.helpers.repos import ROOT, clone, repo_env, reproduced_tiny_repo, sh


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """(repository, outcome): a reproduced tiny repository with a local DVC remote, its generator promoted,
    registered and pushed."""
    root = tmp_path_factory.mktemp("registry")
    repo = reproduced_tiny_repo(root / "origin")
    sh(["dvc", "remote", "add", "-d", "store", str(root / "store")], repo)
    sh(["git", "commit", "-qm", "local DVC remote", "--", ".dvc/config"], repo)
    assert promote_if_better(repo)["promoted"]
    outcome = register_promoted(repo, "test: promoted generator")
    sh(["dvc", "push"], repo)
    return repo, outcome


def tags(repo) -> set[str]:
    return set(sh(["git", "tag", "--list"], repo).split())


@pytest.mark.slow
def test_promotion_registers_a_prod_version_at_a_commit_that_pins_it(registered):
    repo, outcome = registered
    assert outcome["registered"] and outcome["committed"]
    assert outcome["commit"] == sh(["git", "rev-parse", "HEAD"], repo).strip()
    assert {name: a["version"] for name, a in outcome["artifacts"].items()} == dict.fromkeys(ARTIFACTS, "v0.0.1")
    assert {f"{n}@v0.0.1" for n in ARTIFACTS} | {f"{n}#prod#1" for n in ARTIFACTS} <= tags(repo)
    # the version's commit holds the workspace's dvc.lock and results, and nothing else of the work tree
    assert sh(["git", "status", "--porcelain", "--", "dvc.lock", *git_tracked_results(repo)], repo) == ""
    changed = set(sh(["git", "show", "--name-only", "--format=", "HEAD"], repo).split())
    assert "dvc.lock" in changed and changed <= {"dvc.lock", "params.yaml", *git_tracked_results(repo)}
    assert prod_version(repo) == {"rev": outcome["commit"], "path": "models/generator.onnx"}


@pytest.mark.slow
def test_registering_again_reuses_the_version(registered):
    repo, outcome = registered
    before = tags(repo)
    again = register_promoted(repo, "test: again")
    assert not again["committed"] and again["commit"] == outcome["commit"]
    assert again["artifacts"] == outcome["artifacts"] and tags(repo) == before and again["tags"] == []
    assert sorted(outcome["tags"]) == sorted(before)  # the first registration named the 4 tags it made


@pytest.mark.slow
def test_dvc_yaml_declares_the_artifacts(registered):
    repo, _ = registered
    declared = yaml.safe_load((repo / "dvc.yaml").read_text())["artifacts"]
    assert {name: a["path"] for name, a in declared.items()} == ARTIFACTS
    assert (
        declared["eae-generator"]["type"] == "model"
        and declared["eae-generator"]["meta"]["card"] == ARTIFACTS["eae-generator-card"]
    )


def artifacts_get(source, name: str, out) -> None:
    proc = subprocess.run(
        ["dvc", "artifacts", "get", str(source), name, "--stage", "prod", "-o", str(out)],
        cwd=out.parent,
        env=repo_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_artifacts_get_from_a_clone_and_from_the_local_remote(registered, tmp_path):
    repo, _ = registered
    # from the repository itself (its DVC cache)
    got = tmp_path / "from-clone"
    got.mkdir()
    artifacts_get(repo, "eae-generator", got / "generator.onnx")
    assert (got / "generator.onnx").read_bytes() == (repo / "models/generator.onnx").read_bytes()
    # from a second clone: git only (tags included), no DVC cache, so the data comes from the local remote
    second = clone(repo, tmp_path / "second")
    assert not (second / ".dvc" / "cache").exists() and not (second / "models/generator.onnx").exists()
    fetched = tmp_path / "from-remote"
    fetched.mkdir()
    artifacts_get(second, "eae-generator", fetched / "generator.onnx")
    artifacts_get(second, "eae-generator-card", fetched / "generator.json")
    for name in ("generator.onnx", "generator.json"):
        assert (fetched / name).read_bytes() == (repo / "models" / name).read_bytes()
    images = Generator(fetched / "generator.onnx").sample(4, seed=0)  # the card beside it verifies the model
    assert images.shape[0] == 4
    shutil.rmtree(second)


def test_git_tracked_results_are_the_uncached_outputs():
    assert {"reports/fid.json", "reports/scores.json", "reports/feature_extractor.json"} <= set(
        git_tracked_results(ROOT)
    )
    assert "models/generator.onnx" not in git_tracked_results(ROOT)


def test_outside_git_nothing_is_registered(tmp_path):
    outcome = register_promoted(tmp_path)
    assert outcome == {"registered": False, "reason": f"{tmp_path.resolve()} is not a git repository: no registry"}


def test_a_generator_dvc_lock_does_not_pin_is_refused(tmp_path):
    sh(["git", "init", "-q"], tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models/generator.onnx").write_bytes(b"edited after the run")
    lock = {"stages": {"export": {"outs": [{"path": "models/generator.onnx", "md5": "0" * 32}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    with pytest.raises(EAEError, match="is not the file dvc.lock pins"):
        register_promoted(tmp_path)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {}}))
    with pytest.raises(EAEError, match="is not in dvc.lock"):
        register_promoted(tmp_path)
