"""Prefect automations that notify a webhook when the retrain flow fails or its metric regresses.

    export PREFECT_API_URL=http://127.0.0.1:4200/api          # a Prefect server (make prefect-server)
    python -m pipelines.orchestration.alerts --webhook-url https://hooks.slack.com/services/...

creates (or replaces) a notification block ``eae-alerts`` (Prefect's custom webhook block,
posting JSON ``{"text": subject + body}``, which Slack, Mattermost and most chat webhooks accept)
and two automations:

- ``eae-retrain failed``: an ``eae-retrain`` flow run enters Failed or Crashed;
- ``eae-retrain metric regressed``: the flow's ``eae.metric.regressed`` event (its new model is
  worse than the promoted one on the gating metric, with the same features; see pipelines.orchestration.artifacts).

Running it again replaces them, so the command is safe to repeat.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipelines.orchestration.artifacts import REGRESSED_EVENT

BLOCK = "eae-alerts"
FAILED = "eae-retrain failed"
REGRESSED = "eae-retrain metric regressed"
FLOW = "eae-retrain"


def automations(block_id) -> list:
    """The two automations (prefect AutomationCore), notifying through block ``block_id``."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    failed = AutomationCore(
        name=FAILED,
        description="Notify when a retrain flow run fails or crashes",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": FLOW},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="eae-retrain failed",
                body="Flow run {{ flow_run.name }} of eae-retrain ended {{ flow_run.state.name }}: "
                "{{ flow_run.state.message }}",
            )
        ],
    )
    regressed = AutomationCore(
        name=REGRESSED,
        description="Notify when a retrain produced a worse model than the promoted one",
        trigger=EventTrigger(
            expect={REGRESSED_EVENT},
            match={"prefect.resource.id": "eae.generator.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="eae-retrain metric regressed",
                body="{{ event.payload.metric }} of the new model {{ event.payload.candidate }} > "
                "promoted {{ event.payload.promoted }} ({{ event.payload.feature_extractor }} "
                "features): kept the promoted model. Workspace {{ event.resource.name }}.",
            )
        ],
    )
    return [failed, regressed]


def install(webhook_url: str) -> list[str]:
    """Save the webhook block and (re)create the automations; returns their names."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client

    block = CustomWebhookNotificationBlock(
        name=BLOCK, url=webhook_url, method="POST", json_data={"text": "{{subject}}\n{{body}}"}
    )
    block_id = block.save(BLOCK, overwrite=True)
    created = []
    with get_client(sync_client=True) as client:
        for automation in automations(block_id):
            for old in client.read_automations_by_name(automation.name):
                client.delete_automation(old.id)
            client.create_automation(automation)
            created.append(automation.name)
    return created


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.orchestration.alerts", description=__doc__.splitlines()[0])
    ap.add_argument("--webhook-url", required=True, help="where notifications are POSTed (JSON {'text': ...})")
    args = ap.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "error: automations live on a Prefect server: run `make prefect-server` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    if not args.webhook_url.startswith(("http://", "https://")):
        print(f"error: --webhook-url must be an http(s) URL, got {args.webhook_url!r}", file=sys.stderr)
        return 2
    for name in install(args.webhook_url):
        print(f"automation {name!r} -> notification block {BLOCK!r} ({args.webhook_url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
