"""Overhead of the Prefect retrain flow over a plain `dvc repro`, measured in one run.

    python benchmarks/flow_overhead.py

In a temporary committed copy of the repository with the tests' tiny configuration:
  1. `dvc repro --force`                          (every stage, plain DVC)
  2. flow `retrain(force=True)`, ephemeral Prefect (one task per stage: `dvc repro -f -s <stage>`)
  3. `dvc repro` and the flow again with nothing to do (the scheduled no-change case)
Prints wall times and the ratios flow / plain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from tests.helpers import make_tiny_repo, repo_env  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    import argparse

    from _results import add_json_argument, row, write
    from prefect.testing.utilities import prefect_test_harness

    from pipelines.orchestration.flows import retrain

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_json_argument(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_tiny_repo(Path(tmp))
        env = repo_env()

        def dvc(*args: str) -> None:
            subprocess.run(["dvc", *args], cwd=repo, env=env, check=True, capture_output=True)

        dvc("repro")  # warm caches (imports, fonts, DVC state)
        os.environ["PATH"] = env["PATH"]
        with prefect_test_harness(server_startup_timeout=120):
            retrain(repo=str(repo), promote_if_better=False)  # warm-up of the ephemeral API
            plain = timed(lambda: dvc("repro", "--force"))
            flow = timed(lambda: retrain(repo=str(repo), force=True, promote_if_better=False))
            plain_noop = timed(lambda: dvc("repro"))
            flow_noop = timed(lambda: retrain(repo=str(repo), promote_if_better=False))
    print(f"full pipeline (forced):  dvc repro {plain:6.1f} s | flow {flow:6.1f} s | ratio {flow / plain:5.2f}x")
    print(
        f"nothing changed:         dvc repro {plain_noop:6.1f} s | flow {flow_noop:6.1f} s | "
        f"ratio {flow_noop / plain_noop:5.2f}x"
    )
    seconds = {"dvc_repro": plain, "flow": flow, "dvc_repro_noop": plain_noop, "flow_noop": flow_noop}
    write(
        args.json,
        "flow_overhead",
        [
            row("retrain flow / dvc repro, whole pipeline forced (tiny config)", flow / plain, "x", details=seconds),
            row("retrain flow / dvc repro, nothing to do", flow_noop / plain_noop, "x", details=seconds),
        ],
    )


if __name__ == "__main__":
    main()
