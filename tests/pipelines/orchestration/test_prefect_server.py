"""A real `prefect server start` on a free loopback port: a served deployment with a short interval
schedule and a scheduled run that completes; the retrain flow's artifacts read back through the
Prefect client; the alert automations notifying a local webhook. Bounded in time; stops its processes."""

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import yaml

from tests.helpers.processes import free_port, runs_in, stop
from tests.helpers.repos import repo_env, reproduced_tiny_repo, sh

pytestmark = pytest.mark.slow
TIMEOUT_S = 300
RUN_TIMEOUT_S = 900  # one retrain of the tiny pipeline: ~3 min on 2 idle cores, much more on a busy machine


@contextmanager
def prefect_server(tmp_path, deadline: float):
    """`prefect server start` on a free port with its own PREFECT_HOME; yields (api url, env for clients)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **repo_env(),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=open(tmp_path / "server.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while True:
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield api, env
    finally:
        stop(server)


def test_scheduled_run_completes(tmp_path):
    # The pipeline already ran there (its DVC stages are up to date; the flow that really trains is
    # tested in test_flows.py): what is tested here is the schedule, the served deployment and the run.
    repo = reproduced_tiny_repo(tmp_path / "repo")
    deadline = time.monotonic() + TIMEOUT_S
    with prefect_server(tmp_path, deadline) as (api, env):
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.orchestration.flows",
                "serve",
                "--interval",
                "5",
                "--repo",
                str(repo),
                "--name",
                "test-schedule",
            ],
            env=env,
            cwd=repo,
            stdout=open(tmp_path / "serve.log", "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            completed = None
            while completed is None:
                assert time.monotonic() < deadline, (
                    "no scheduled run completed in time:\n" + (tmp_path / "serve.log").read_text()[-3000:]
                )
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
            stop(serve)


class Webhook(ThreadingHTTPServer):
    """A loopback HTTP server that records the JSON bodies POSTed to it (the notifications)."""

    def __init__(self):
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def wait_for(self, text: str, deadline: float) -> str:
        while time.monotonic() < deadline:
            found = [m["text"] for m in self.received if text in m.get("text", "")]
            if found:
                return found[0]
            time.sleep(1)
        raise AssertionError(f"no notification containing {text!r}; received {self.received}")


def retrain(repo, env, tmp_path, name: str) -> subprocess.CompletedProcess:
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.run(
            [sys.executable, "-m", "pipelines.orchestration.flows", "retrain", "--repo", str(repo)],
            env=env,
            cwd=repo,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT_S,
        )


def test_artifacts_and_alerts_on_a_real_server(tmp_path):
    """Two retrain runs publish the table eae-fid and the markdown eae-promotion as two versions of
    each key; the automations of `python -m pipelines.orchestration.alerts` notify a webhook when the second run's
    model is worse than the promoted one and when a third run fails."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, TaskRunFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    repo = reproduced_tiny_repo(tmp_path / "repo")  # the first run promotes what `dvc repro` built there
    deadline = time.monotonic() + 3 * RUN_TIMEOUT_S
    webhook = Webhook()
    try:
        with prefect_server(tmp_path, deadline) as (api, env):
            alerts = subprocess.run(
                [sys.executable, "-m", "pipelines.orchestration.alerts", "--webhook-url", webhook.url],
                env=env,
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert alerts.returncode == 0, alerts.stderr[-3000:]
            assert "eae-retrain failed" in alerts.stdout and "eae-retrain metric regressed" in alerts.stdout

            first = retrain(repo, env, tmp_path, "first")
            assert first.returncode == 0, (tmp_path / "first.log").read_text()[-3000:]
            # A better promoted model (every number halved) makes the unchanged second run a regression.
            card_file = repo / "models/promoted/generator.json"
            card = json.loads(card_file.read_text())
            evaluation = card["evaluation"]
            halved = {m: {c: v / 2 for c, v in values.items()} for m, values in evaluation["metrics"].items()}
            card_file.write_text(json.dumps({**card, "evaluation": {**evaluation, "metrics": halved}}))
            second = retrain(repo, env, tmp_path, "second")
            assert second.returncode == 0, (tmp_path / "second.log").read_text()[-3000:]
            commit = sh(["git", "rev-parse", "HEAD"], repo).strip()  # the second run's (the third commits params)
            regressed = webhook.wait_for("eae-retrain metric regressed", deadline)
            fid = json.loads((repo / "reports/fid.json").read_text())
            assert (
                f"gmm of the new model {fid['metrics']['fd']['gmm']}" in regressed
                and "kept the promoted model" in regressed
            )

            params = yaml.safe_load((repo / "params.yaml").read_text())
            # Valid (and committed) parameters the data cannot satisfy: a batch larger than the 1437 training
            # digits. The train stage exits 1 inside the flow run, which ends Failed.
            params["train"]["batch_size"] = 2000
            (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            sh(["git", "commit", "-qm", "a batch too large", "--", "params.yaml"], repo)
            assert retrain(repo, env, tmp_path, "third").returncode == 1
            failed = webhook.wait_for("eae-retrain failed", deadline)
            assert "ended Failed" in failed and "stage 'train' failed" in failed

            with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:

                def versions(key):  # newest first; prefect 3.8 needs every field (the task-run filter: made in a task)
                    return client.read_artifacts(
                        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                        flow_run_filter=FlowRunFilter(),
                        task_run_filter=TaskRunFilter(),
                        limit=10,
                        offset=0,
                        sort="CREATED_DESC",
                    )

                tables, notes = versions("eae-fid"), versions("eae-promotion")
                assert len(tables) == len(notes) == 2  # the failed run published nothing
                assert {t.type for t in tables} == {"table"} and {n.type for n in notes} == {"markdown"}
                latest = tables[0]
                rows = json.loads(latest.data) if isinstance(latest.data, str) else latest.data
                gmm = next(r for r in rows if (r["sampler"], r["metric"]) == ("gmm", "fd"))
                assert gmm["this run"] == round(fid["metrics"]["fd"]["gmm"], 4)
                assert gmm["promoted"] == round(halved["fd"]["gmm"], 4)
                assert {r["sampler"] for r in rows} >= {"isotropic", "mvg", "gmm", "reconstruction"}
                note = notes[0].data
                assert note.startswith("# eae-retrain: kept the promoted generator") and commit in note
                assert str(repo.resolve() / "reports" / "index.html") in note
                assert notes[1].data.startswith("# eae-retrain: promoted the new")
                run = client.read_flow_run(latest.flow_run_id)
                assert client.read_flow(run.flow_id).name == "eae-retrain"
    finally:
        webhook.shutdown()
