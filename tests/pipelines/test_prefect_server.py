"""A real `prefect server start` on a free loopback port, a served deployment with a short
interval schedule, and a scheduled run that completes. Bounded in time; stops its processes."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers import make_tiny_repo, repo_env

pytestmark = pytest.mark.slow
TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs_in(api: str, *states: str) -> list[dict]:
    query = {"flow_runs": {"state": {"type": {"any_": list(states)}}}, "limit": 10}
    return httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10).json()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_scheduled_run_completes(tmp_path):
    repo = make_tiny_repo(tmp_path / "repo")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**repo_env(), "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    bin_dir = os.path.dirname(sys.executable)
    deadline = time.monotonic() + TIMEOUT_S
    server = subprocess.Popen([os.path.join(bin_dir, "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=open(tmp_path / "server.log", "w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    serve = None
    try:
        while True:
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        serve = subprocess.Popen([sys.executable, "-m", "pipelines.flows", "serve", "--interval", "5",
                                  "--repo", str(repo), "--name", "test-schedule"], env=env, cwd=repo,
                                 stdout=open(tmp_path / "serve.log", "w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        completed = None
        while completed is None:
            assert time.monotonic() < deadline, "no scheduled run completed in time:\n" + \
                (tmp_path / "serve.log").read_text()[-3000:]
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            failed = runs_in(api, "FAILED", "CRASHED")
            assert not failed, (tmp_path / "serve.log").read_text()[-3000:]
            completed = next(iter(runs_in(api, "COMPLETED")), None)
            time.sleep(2)
        assert completed["auto_scheduled"] and completed["deployment_id"]
        deployment = httpx.get(f"{api}/deployments/{completed['deployment_id']}", timeout=10).json()
        assert deployment["name"] == "test-schedule"
        assert (repo / "reports/fid.json").exists() and (repo / "models/promoted/generator.onnx").exists()
    finally:
        if serve is not None:
            stop(serve)
        stop(server)
