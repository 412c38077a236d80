"""The alert automations' definitions and the command's bad inputs (the real server test is in
test_prefect_server.py)."""

import uuid

import pytest

from pipelines.orchestration.alerts import FAILED, FLOW, REGRESSED, automations, main
from pipelines.orchestration.artifacts import REGRESSED_EVENT


def test_automations_watch_failures_and_the_regression_event():
    block = uuid.uuid4()
    failed, regressed = automations(block)
    assert (failed.name, regressed.name) == (FAILED, REGRESSED)
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert failed.trigger.match_related.root == {"prefect.resource.role": "flow", "prefect.resource.name": FLOW}
    assert regressed.trigger.expect == {REGRESSED_EVENT}
    for automation in (failed, regressed):
        (action,) = automation.actions
        assert action.type == "send-notification" and action.block_document_id == block


@pytest.mark.parametrize(
    "env, url, message",
    [
        ({}, "https://hooks.example.invalid/x", "PREFECT_API_URL"),
        ({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "hooks.example.invalid/x", "must be an http(s) URL"),
    ],
)
def test_bad_inputs_are_one_line_exit_2(monkeypatch, capsys, env, url, message):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["--webhook-url", url]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and message in line
