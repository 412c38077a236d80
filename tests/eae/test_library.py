"""``eae/`` is a library of pure functions and modules (issue 31): it never runs a process, never imports DVC,
Prefect or the pipeline, never picks a device (its functions take the one they are given; only the command
line modules, ``cli.py`` and ``*_cli.py``, resolve ``auto``), and its messages name no DVC command and no
pipeline stage (an input another stage makes is refused with ``eae.errors.MissingArtifact`` or
``StaleArtifact``; the stage adds the hint, ``pipelines._stage.ARTIFACT_HINTS``).

Checked on the syntax tree of every module, so comments and docstrings may describe the pipeline; every
other string constant (messages, f-string parts, log lines) may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "eae"

#: Top-level packages the library never imports.
FORBIDDEN_IMPORTS = {"subprocess", "dvc", "prefect", "pipelines"}
#: Functions of ``os`` that run another program.
PROCESS_CALLS = re.compile(r"^(system|popen|exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?|fork|forkpty)$")
STAGES = "fetch|prepare|train|fit_density|feature_stats|evaluate|export|report"
#: What a message must not say: a DVC command, the pipeline's modules, or a stage by its name.
FORBIDDEN_TEXT = re.compile(
    r"\bdvc\s+[a-z]+"  # a command (DVC as a name, "as DVC lists them", is fine)
    r"|\bpipelines\."
    rf"|(?i:\b(?:{STAGES})\s+stage\b)"
    rf"|(?i:\b(?:re-?run|retrain\s+with)\s+(?:the\s+)?(?:{STAGES})\b)"
)


def _is_cli(filename: str) -> bool:
    name = Path(filename).name
    return name == "cli.py" or name.endswith("_cli.py")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of the module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def _dotted(node: ast.AST) -> str:
    """``torch.cuda.is_available`` for the attribute chain of a call (empty when it is not a plain chain)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def violations(source: str, filename: str = "module.py") -> list[str]:
    """Every way ``source`` (a module of eae/ named ``filename``) is not pure, one line each (with its line)."""
    tree = ast.parse(source, filename)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] if node.level == 0 else []
            if node.module == "os":
                modules += [f"os.{a.name}" for a in node.names if PROCESS_CALLS.match(a.name)]
        else:
            modules = []
        for module in modules:
            if module.split(".")[0] in FORBIDDEN_IMPORTS or module.startswith("os."):
                found.append(f"{filename}:{line}: imports {module}")
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name.endswith("cuda.is_available") and not _is_cli(filename):
                found.append(f"{filename}:{line}: picks a device ({name}())")
            if name.startswith("os.") and PROCESS_CALLS.match(name[3:]):
                found.append(f"{filename}:{line}: runs a process ({name}())")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            match = FORBIDDEN_TEXT.search(node.value)
            if match:
                found.append(f"{filename}:{line}: names {match.group(0)!r} in {node.value[:80]!r}")
    return found


def test_the_library_is_pure():
    modules = sorted(LIBRARY.rglob("*.py"))
    assert len(modules) > 50  # the walk found the library
    found = [v for path in modules for v in violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "eae/ must stay a library:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import subprocess\n", "imports subprocess"),
        ("from subprocess import run\n", "imports subprocess"),
        ("import dvc.api\n", "imports dvc.api"),
        ("from dvc.repo import Repo\n", "imports dvc.repo"),
        ("def f():\n    import prefect\n", "imports prefect"),
        ("from pipelines._stage import log\n", "imports pipelines._stage"),
        ("from os import system\n", "imports os.system"),
        ("import os\nos.system('ls')\n", "runs a process (os.system())"),
        ("import os\nos.execvp('ls', ['ls'])\n", "runs a process (os.execvp())"),
        ("import torch\nd = 'cuda' if torch.cuda.is_available() else 'cpu'\n", "picks a device"),
        ("from torch import cuda\nok = cuda.is_available()\n", "picks a device"),
        ("raise ValueError('missing x: run dvc repro first')\n", "names 'dvc repro'"),
        ("p = 'x'\nraise ValueError(f'{p}: restore it with dvc pull')\n", "names 'dvc pull'"),
        ("log.info('see dvc exp show')\n", "names 'dvc exp'"),
        ("raise E('run the fit_density stage first')\n", "names 'fit_density stage'"),
        ("raise E(f'{x}: re-run the export stage')\n", "names 're-run the export'"),
        ("raise E('not a density of these codes (rerun fit_density)')\n", "names 'rerun fit_density'"),
        ("raise E('use python -m pipelines.fetch')\n", "names 'pipelines.'"),
        ("raise E('Re-run the Export stage')\n", "names 'Re-run the Export'"),
    ],
)
def test_each_kind_of_impurity_is_found(source, expected):
    found = violations(source)
    assert len(found) == 1 and expected in found[0], found


def test_what_a_library_may_do_is_not_flagged():
    source = '''"""Module docs may say: the evaluate stage runs `dvc repro evaluate` (python -m pipelines.evaluate)."""
import os
import torch
from eae.errors import MissingArtifact


def load(path, device):
    """A docstring may name the fit_density stage and dvc pull."""
    # a comment may too: dvc repro train
    if not os.path.exists(path):
        raise MissingArtifact(f"missing density file {path}", "density")
    names = "two_stage", "the second stage", "retrain", "a staged export", "rows as DVC lists them"
    return torch.load(path, map_location=device), names
'''
    assert violations(source) == []


def test_only_command_line_modules_may_resolve_the_device():
    source = "import torch\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'\n"
    assert violations(source, "eae/export/cli.py") == violations(source, "eae/evaluation/fid_cli.py") == []
    assert len(violations(source, "eae/evaluation/fid.py")) == 1
    assert len(violations("import subprocess\n", "eae/export/cli.py")) == 1  # but never run a process


MAX_LINES = 400  # issue 31: no library module over 400 lines (templates are not modules)


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in LIBRARY.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
