"""A stage started by an interpreter that is not the project's environment stops with one line (exit 2)."""

import subprocess
import sys
import venv

from tests.helpers.repos import ROOT


def test_stage_under_another_interpreter_stops_with_one_line(tmp_path):
    venv.create(tmp_path / "bare", with_pip=False)  # a Python without the project (and without numpy)
    proc = subprocess.run(
        [str(tmp_path / "bare/bin/python"), "-m", "pipelines.prepare"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and "source .venv/bin/activate" in line and "Traceback" not in proc.stderr


def test_the_project_environment_passes():
    proc = subprocess.run([sys.executable, "-m", "pipelines._stage"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
