"""README.md's and the docs site's commands work as written, in a fresh shell.

Every fenced ```bash and ```python block of README.md, then of each docs page (in the order of mkdocs.yml's nav),
runs, in order, as one bash script (set -euo pipefail) in a tiny-config copy of the repository, with a clean
environment: PATH without the virtualenv, no PYTHONPATH, no VIRTUAL_ENV, its own HOME and PREFECT_HOME. A python
block runs as ``python - <<'EOF'`` under the python the earlier blocks put on PATH (README activates `.venv`).
`.venv` in the copy links to the environment the tests run in, which is what `make install` builds. A block
preceded by `<!-- readme-test: skip (reason) -->` is not run (installs, servers, GPUs, downloads, placeholders).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.repos import ROOT, reproduced_tiny_repo, sh

SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCES = {"```bash": "bash", "```python": "python"}
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
INSTALLS = re.compile(r"^\s*(make\b(?!\s+chromium)|pip3?\s+install|python3?\s+-m\s+pip\s+install)", re.M)
PYTHON_END = "EAE_DOCS_PYTHON_BLOCK"  # the heredoc delimiter of a python block (no block may contain it)
TIMEOUT_S = 1500


def nav_pages(root: Path = ROOT) -> list[str]:
    """The pages of mkdocs.yml's nav, in order, as paths relative to the repository."""

    def walk(node) -> list[str]:
        if isinstance(node, str):
            return [node] if node.endswith(".md") else []
        if isinstance(node, list):
            return [page for item in node for page in walk(item)]
        if isinstance(node, dict):
            return [page for value in node.values() for page in walk(value)]
        return []

    return [f"docs/{page}" for page in walk(yaml.safe_load((root / "mkdocs.yml").read_text()).get("nav", []))]


def docs_pages(root: Path = ROOT) -> list[str]:
    """The docs pages in the order of mkdocs.yml's nav, then any page the nav does not list (sorted), so that
    no page escapes the test."""
    nav = nav_pages(root)
    rest = sorted(p.relative_to(root).as_posix() for p in (root / "docs").rglob("*.md"))
    return nav + [p for p in rest if p not in nav]


def documents(root: Path = ROOT) -> list[str]:
    return ["README.md", *docs_pages(root)]


def code_blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """(line number, language, code, skip reason or None) of every ```bash and ```python block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        language = FENCES.get(lines[i].strip())
        if language:
            start = i
            previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            skip = SKIP.fullmatch(previous.strip())
            i += 1
            code = []
            while i < len(lines) and lines[i].strip() != "```":
                code.append(lines[i])
                i += 1
            blocks.append((start + 1, language, "\n".join(code), skip.group("reason").strip() if skip else None))
        i += 1
    return blocks


def bash_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, skip reason or None) of every ```bash block."""
    return [(line, code, reason) for line, language, code, reason in code_blocks(text) if language == "bash"]


def as_bash(language: str, code: str) -> str:
    return code if language == "bash" else f"python - <<'{PYTHON_END}'\n{code}\n{PYTHON_END}"


def test_readme_keeps_the_quick_start_runnable():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    runnable = [code for _, code, reason in blocks if reason is None]
    assert any("source .venv/bin/activate" in code for code in runnable)
    assert any("dvc exp run -S entropy_weight=0.5" in code for code in runnable)


@pytest.mark.parametrize("name", documents())
def test_blocks_are_found_and_every_skip_has_a_reason(name):
    text = (ROOT / name).read_text().splitlines()
    # a marker (a line of its own) must sit right above a bash or python fence, or it silently marks nothing
    for n, line in enumerate(text):
        if line.strip().startswith("<!--") and "readme-test" in line:
            assert SKIP.fullmatch(line.strip()), f"{name}:{n + 1}: not a skip marker with a reason: {line.strip()}"
            following = next(ln for ln in text[n + 1 :] if ln.strip())
            assert following.strip() in FENCES, f"{name}:{n + 1}: skip marker not followed by a bash or python block"
    for line, _language, code, _ in code_blocks("\n".join(text)):
        assert PYTHON_END not in code, f"{name}:{line}: the block contains the test's heredoc delimiter"


@pytest.mark.parametrize("name", documents())
def test_runnable_blocks_install_nothing(name):
    """The slow test links the environment it runs in: a runnable block must not install into it
    (every make target but chromium runs `make install`, which reinstalls the project)."""
    for line, language, code, reason in code_blocks((ROOT / name).read_text()):
        if reason is None and language == "bash":
            assert not INSTALLS.search(code), f"{name}:{line}: installing block needs a skip marker:\n{code}"


def test_every_docs_page_is_in_the_nav():
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages == set(nav_pages()), "a docs page is missing from mkdocs.yml's nav (or the nav names no file)"
    assert documents()[:2] == ["README.md", "docs/index.md"]


def test_parser_reads_markers():
    text = (
        "x\n<!-- readme-test: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n\n```bash\necho hi\n```\n"
        "```python\nprint(1)\n```\n```yaml\na: 1\n```\n"
    )
    assert bash_blocks(text) == [(3, "nvidia-smi", "needs a GPU"), (7, "echo hi", None)]
    assert code_blocks(text)[2] == (10, "python", "print(1)", None)
    assert len(code_blocks(text)) == 3  # yaml is not run
    assert as_bash("python", "print(1)") == f"python - <<'{PYTHON_END}'\nprint(1)\n{PYTHON_END}"


@pytest.mark.slow
def test_readme_and_docs_commands_run_as_written(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv, so there is no environment to link as .venv")
    repo = reproduced_tiny_repo(tmp_path / "repo")  # the README's `dvc repro` then checks it is up to date
    (repo / ".venv").symlink_to(sys.prefix)  # what `make install` leaves: the project's environment
    with open(repo / ".git" / "info" / "exclude", "a") as f:
        f.write(".venv\n")  # a symlink does not match .gitignore's directory pattern `.venv/`
    script = ["set -euo pipefail"]
    for name in documents(repo):
        for line, language, code, reason in code_blocks((repo / name).read_text()):
            if reason is None:
                assert not (language == "bash" and INSTALLS.search(code)), f"{name}:{line}"  # see above
                script += [f"cd {repo} && echo '>>> {name} line {line}'", as_bash(language, code)]
    (tmp_path / "docs.sh").write_text("\n".join(script) + "\n")
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
        ["bash", str(tmp_path / "docs.sh")], cwd=repo, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert proc.returncode == 0, f"README/docs commands failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert ">>> docs/getting-started.md" in proc.stdout  # the docs pages ran too, after the README
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
