"""README.md's shell commands work as written, in a fresh shell.

Every fenced ```bash block runs, in order, as one bash script (set -euo pipefail) in a tiny-config
copy of the repository, with a clean environment: PATH without the virtualenv, no PYTHONPATH, no
VIRTUAL_ENV, its own HOME and PREFECT_HOME. `.venv` in the copy links to the environment the tests
run in, which is what `make install` builds. A block preceded by
`<!-- readme-test: skip (reason) -->` is not run (installs, servers, GPUs, downloads, placeholders).
"""

import os
import re
import subprocess
import sys

import pytest

from tests.helpers.repos import ROOT, reproduced_tiny_repo, sh

SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
INSTALLS = re.compile(r"^\s*(make\b(?!\s+chromium)|pip3?\s+install|python3?\s+-m\s+pip\s+install)", re.M)
TIMEOUT_S = 1500


def bash_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, skip reason or None) of every ```bash block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            skip = SKIP.fullmatch(previous.strip())
            i += 1
            code = []
            while i < len(lines) and lines[i].strip() != "```":
                code.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(code), skip.group("reason").strip() if skip else None))
        i += 1
    return blocks


def test_blocks_are_found_and_every_skip_has_a_reason():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    runnable = [code for _, code, reason in blocks if reason is None]
    assert any("source .venv/bin/activate" in code for code in runnable)
    assert any("dvc exp run -S entropy_weight=0.5" in code for code in runnable)
    # a marker (a line of its own) must sit right above a bash fence, or it silently marks nothing
    text = (ROOT / "README.md").read_text().splitlines()
    for n, line in enumerate(text):
        if SKIP.fullmatch(line.strip()):
            following = next(ln for ln in text[n + 1 :] if ln.strip())
            assert following.strip() == "```bash", f"README.md:{n + 1}: skip marker not followed by a bash block"


def test_runnable_blocks_install_nothing():
    """The slow test links the environment it runs in: a runnable block must not install into it
    (every make target but chromium runs `make install`, which reinstalls the project)."""
    for line, code, reason in bash_blocks((ROOT / "README.md").read_text()):
        if reason is None:
            assert not INSTALLS.search(code), f"README.md:{line}: installing block needs a skip marker:\n{code}"


def test_parser_reads_markers():
    text = "x\n<!-- readme-test: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n\n```bash\necho hi\n```\n"
    assert bash_blocks(text) == [(3, "nvidia-smi", "needs a GPU"), (7, "echo hi", None)]


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv, so there is no environment to link as .venv")
    repo = reproduced_tiny_repo(tmp_path / "repo")  # the README's `dvc repro` then checks it is up to date
    (repo / ".venv").symlink_to(sys.prefix)  # what `make install` leaves: the project's environment
    with open(repo / ".git" / "info" / "exclude", "a") as f:
        f.write(".venv\n")  # a symlink does not match .gitignore's directory pattern `.venv/`
    blocks = bash_blocks((repo / "README.md").read_text())
    assert not any(INSTALLS.search(code) for _, code, reason in blocks if reason is None)  # see above
    script = ["set -euo pipefail"]
    for line, code, reason in blocks:
        if reason is None:
            script += [f"echo '>>> README.md line {line}'", code]
    (tmp_path / "readme.sh").write_text("\n".join(script) + "\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": CLEAN_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DVC_NO_ANALYTICS": "1",
        "PIP_DRY_RUN": "1",  # a second guard: nothing is ever installed into the linked environment
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    proc = subprocess.run(
        ["bash", str(tmp_path / "readme.sh")], cwd=repo, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert proc.returncode == 0, f"README commands failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    # what the commands promise exists
    for out in (
        "models/generator.onnx",
        "models/generator_z.onnx",
        "models/README.md",
        "reports/index.html",
        "samples.png",
        "samples.npy",
        "models/promoted/generator.onnx",
    ):
        assert (repo / out).is_file(), out
    assert "entropy_weight" in proc.stdout and "0.5" in proc.stdout  # dvc exp show --only-changed
    assert '"producer_name": "eae"' in proc.stdout  # runtime info shows the ONNX fields
    # the experiment is recorded for `dvc exp show`, under the project's interpreter
    assert sh(["git", "-C", str(repo), "for-each-ref", "refs/exps"], repo).strip()
