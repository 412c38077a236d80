"""scripts/sweep_table.py: one Markdown row per setting and objective, mean ± std of each metric column."""

import importlib.util
import json
import subprocess
import sys

from eae.evaluation.table1 import aggregate
from tests.helpers.repos import ROOT


def test_rows_are_the_aggregates_mean_and_std(tmp_path):
    runs = [
        {
            "objective": "eae",
            "seed": s,
            "metrics": {"fd": {"gmm": g, "isotropic": i}, "kid": {"gmm": k, "isotropic": 1.0}},
        }
        for s, g, i, k in ((0, 2.0, 6.0, 5.0), (1, 4.0, 8.0, 7.0))
    ]
    (tmp_path / "q1000.json").write_text(json.dumps(aggregate(runs, ["eae"])))
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sweep_table.py"), str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "| setting | objective | seeds | fd gmm | fd isotropic | kid gmm | kid isotropic |"
    assert lines[2] == "| q1000 | eae | 2 | 3.00 ± 1.41 | 7.00 ± 1.41 | 6.00 ± 1.41 | 1.00 ± 0.00 |"


def test_an_empty_folder_is_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sweep_table.py"), str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 1 and out.stderr == f"error: no sweep results in {tmp_path}\n"


def _module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_markdown_table_is_what_the_command_prints(tmp_path):
    runs = [{"objective": "ae", "seed": s, "metrics": {"fd": {"gmm": 1.0 + s}, "kid": {"gmm": 2.0}}} for s in (0, 1)]
    (tmp_path / "a.json").write_text(json.dumps(aggregate(runs, ["ae"])))
    table = _module(ROOT / "scripts" / "sweep_table.py").markdown_table([tmp_path / "a.json"], ["gmm"])
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sweep_table.py"), str(tmp_path), "--columns", "gmm"],
        capture_output=True,
        text=True,
    )
    assert out.stdout == table + "\n"
    assert table.splitlines()[2] == "| a | ae | 2 | 1.50 ± 0.71 | 2.00 ± 0.00 |"


def test_the_docs_site_renders_the_same_table():
    """docs/hooks.py replaces `<!-- table: sweeps -->` with the command's table of reports/sweeps."""
    hooks = _module(ROOT / "docs" / "hooks.py")
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sweep_table.py"), str(ROOT / "reports" / "sweeps")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert hooks.render("before\n<!-- table: sweeps -->\nafter") == f"before\n{out.stdout.rstrip()}\nafter"
