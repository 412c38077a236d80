"""make table1 end to end on the tiny config: objectives x seeds as queued DVC experiments, the
aggregate in reports/table1.json and the report's Table 1 section."""

import json
import subprocess

import numpy as np
import pytest

from tests.helpers import repo_env, reproduced_tiny_repo, sh

pytestmark = pytest.mark.slow


def test_table1_runs_every_cell_as_an_experiment(tmp_path):
    env = repo_env()
    dst = reproduced_tiny_repo(tmp_path / "repo")
    sh(["git", "add", "-A"], dst, env)
    sh(["git", "commit", "-qm", "results"], dst, env)
    # One objective (the two-stage VAE: the only one with a fourth sampler) keeps the test short; the
    # aggregation over objectives is tested in tests/eae/test_table1.py.
    sh(["python", "-m", "pipelines.table1", "--seeds", "2", "--objectives", "two_stage_vae", "--poll", "1"], dst, env)

    table = json.loads((dst / "reports/table1.json").read_text())
    assert [r["objective"] for r in table["rows"]] == ["two_stage_vae"]
    assert table["columns"] == ["isotropic", "mvg", "gmm", "two_stage", "reconstruction"]
    assert table["failed"] == [] and len(table["experiments"]) == 2 and table["dataset"] == "digits"
    for row in table["rows"]:
        assert row["seeds"] == [0, 1]
        for metric in ("fd", "kid", "precision", "recall"):
            for column, cell in row["cells"][metric].items():
                assert cell["n"] == 2 and np.isfinite(cell["mean"]) and np.isfinite(cell["std"]), (metric, column)
    # The seeds really differ, the test set and extractor do not.
    gmm = table["rows"][0]["cells"]["fd"]["gmm"]["values"]
    assert gmm[0] != gmm[1]

    shown = json.loads(sh(["dvc", "exp", "show", "--json"], dst, env))
    names = {e.get("name") for row in shown for e in (row.get("experiments") or [])}
    assert {"t1-two_stage_vae-s0", "t1-two_stage_vae-s1"} <= names
    html = (dst / "reports/index.html").read_text()
    assert 'id="table1"' in html and "2SVAE" in html and "± " in html

    # The same command again resumes: every cell is already finished on this commit, none is rerun.
    again = subprocess.run(["python", "-m", "pipelines.table1", "--seeds", "2", "--objectives", "two_stage_vae",
                            "--poll", "1", "--no-report"], cwd=dst, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 2 of 2 cells already finished" in again.stderr and "queued" not in again.stderr
    resumed = json.loads((dst / "reports/table1.json").read_text())
    assert resumed["rows"] == table["rows"] and resumed["experiments"] == table["experiments"]
