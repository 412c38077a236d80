"""The form of the stage scripts (issue 31): every ``main`` reads as a few named steps, no module grows
past what a reader takes in at once."""

import ast
from pathlib import Path

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
MAX_MAIN_LINES = 60
MAX_MODULE_LINES = 400


def test_every_main_is_short():
    long = {}
    for path in sorted(PIPELINES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_MAIN_LINES:
                    long[str(path.relative_to(PIPELINES.parent))] = lines
    assert not long, f"main() over {MAX_MAIN_LINES} lines (split it into named steps): {long}"


def test_no_module_is_long():
    long = {
        str(path.relative_to(PIPELINES.parent)): n
        for path in sorted(PIPELINES.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
