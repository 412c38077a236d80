"""The prefect.yaml deployment on a `process` work pool: a real `prefect server start`, `prefect
deploy` from the repository, a flow run requested like a user would, and a real `prefect worker`
that picks it up and completes it (it pulls the pipeline's outputs from the DVC remote, so no
stage reruns, and promotes the generator). Bounded in time; stops its processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers.processes import free_port, runs_in, stop
from tests.helpers.repos import clone, repo_env

pytestmark = pytest.mark.slow
TIMEOUT_S = 420


def test_a_process_worker_completes_a_run_of_the_deployment(pushed_origin, tmp_path):
    origin, _ = pushed_origin
    repo = clone(origin, tmp_path / "repo")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **repo_env(),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    prefect = os.path.join(os.path.dirname(sys.executable), "prefect")
    log = tmp_path / "server.log"
    deadline = time.monotonic() + TIMEOUT_S
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = None
    try:
        while True:
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)

        def cli(*args: str, known_bug: str | None = None) -> str:
            # PWD: prefect.yaml's pull step records "{{ $PWD }}", the folder `prefect deploy` ran in
            proc = subprocess.run(
                [prefect, "--no-prompt", *args],
                cwd=repo,
                env={**env, "PWD": str(repo)},
                capture_output=True,
                text=True,
                timeout=300,
            )
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0 or (known_bug and known_bug in out), f"prefect {' '.join(args)}:\n{out[-4000:]}"
            return out

        cli("work-pool", "create", "eae-process", "--type", "process")
        # prefect 3.8.8 + fastapi 0.154: after creating the deployment, `prefect deploy` asks for the
        # pool's online workers with explicit null limit/offset, which the server rejects (422).
        out = cli("deploy", "--name", "eae-retrain-weekly", known_bug="/workers/filter' - Response")
        assert "Deployment 'eae-retrain/eae-retrain-weekly' successfully created" in " ".join(out.split())
        cli("deployment", "run", "eae-retrain/eae-retrain-weekly", "--param", "pull=true")
        worker_log = tmp_path / "worker.log"
        worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", "eae-process", "--limit", "1"],
            cwd=tmp_path,
            env=env,
            stdout=open(worker_log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        completed = None
        while completed is None:
            assert time.monotonic() < deadline, "no run completed in time:\n" + worker_log.read_text()[-3000:]
            assert worker.poll() is None, worker_log.read_text()[-3000:]
            assert not runs_in(api, "FAILED", "CRASHED"), worker_log.read_text()[-3000:]
            completed = next(iter(runs_in(api, "COMPLETED")), None)
            time.sleep(2)
        assert completed["work_pool_name"] == "eae-process"
        deployment = httpx.get(f"{api}/deployments/{completed['deployment_id']}", timeout=10).json()
        assert deployment["name"] == "eae-retrain-weekly" and deployment["work_pool_name"] == "eae-process"
        assert completed["parameters"]["pull"] is True
        text = worker_log.read_text()
        assert "Running stage" not in text  # the outputs came from the remote: nothing retrained
        assert (repo / "models/eae.pt").exists() and (repo / "models/promoted/generator.onnx").exists()
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
