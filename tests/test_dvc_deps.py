"""dvc.yaml lists, for every stage, each project module its script imports (directly or through
other project modules, at module level or inside functions): editing such a module must rerun
the stage, or its outputs can describe old code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.helpers.repos import ROOT

PACKAGES = ("eae", "pipelines")


def module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_names(path: Path, module: str) -> set[str]:
    """Project modules named by the import statements anywhere in ``path`` (relative ones resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return {n for n in names if n.split(".")[0] in PACKAGES}


def project_imports(module: str) -> dict[str, str]:
    """module name -> repository-relative file, for ``module`` and everything it imports (with
    the parent packages, whose __init__ runs on import)."""
    found: dict[str, str] = {}
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            path = module_file(name)
            if path is not None and name not in found:
                found[name] = path.relative_to(ROOT).as_posix()
                todo.extend(imported_names(path, name))
    return found


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_list_every_imported_project_module(stage):
    spec = STAGES[stage]
    cmd = spec["cmd"].split()
    assert cmd[:2] == ["python", "-m"], f"{stage}: expected 'python -m pipelines.<stage>', got {spec['cmd']!r}"
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    missing = sorted(f for f in project_imports(cmd[2]).values() if not covered(f, deps))
    assert not missing, f"dvc.yaml stage {stage!r} imports {missing} without listing them in deps"


def test_the_checker_sees_function_level_and_transitive_imports():
    evaluate = project_imports("pipelines.evaluate")
    assert "eae.models.objectives.vae" in evaluate  # through eae.sampling.generator, inside a function
    assert "pipelines.feature_stats" in evaluate  # a stage module imported by another
    assert "eae.models.objectives.registry" not in project_imports("pipelines.feature_stats")  # no false positives
