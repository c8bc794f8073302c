"""Notifications out to a real HTTP receiver (webhook + Slack format) and Slack approvals back in."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from services.notify.service import SlackVerificationError, verify_signature, verify_slack
from tests import loopback
from tests.conftest import ec2_node, install_settings, wait_for

SECRET = "s3cret"
SLACK_SECRET = "slack-signing-secret"


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(loopback.Handler):
        def do_POST(self):  # noqa: N802
            received.append({"path": self.path, "headers": dict(self.headers), "body": self.body()})
            self.send_bytes(200, b"ok")

    server = loopback.serve(Handler)
    yield loopback.base_url(server), received
    loopback.stop(server)




def _slack_request(payload: dict, *, secret: str = SLACK_SECRET, ts: int | None = None) -> tuple[bytes, dict]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = ts or int(time.time())
    import hashlib
    import hmac

    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"x-slack-request-timestamp": str(ts), "x-slack-signature": signature,
                  "content-type": "application/x-www-form-urlencoded"}


def test_webhooks_signed_and_slack_approval_round_trip(platform_env, receiver, monkeypatch):
    from services.api.app import create_app

    base, received = receiver
    monkeypatch.setenv("AIOPS_WEBHOOK_URLS", json.dumps([f"{base}/hook"]))
    monkeypatch.setenv("AIOPS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("AIOPS_SLACK_WEBHOOK_URL", f"{base}/slack")
    monkeypatch.setenv("AIOPS_SLACK_SIGNING_SECRET", SLACK_SECRET)
    install_settings()
    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json={"name": "DiskErrors", "severity": "critical", "node": node,
                                            "summary": "EXT4-fs error: I/O error, SMART failing"})
        slack_ask = wait_for(lambda: [r for r in received if r["path"] == "/slack"
                                      and b'"approve"' in r["body"]], timeout=120, message="Slack approval message")
        message = json.loads(slack_ask[0]["body"])
        button = message["blocks"][1]["elements"][0]
        assert button["action_id"] == "approve"

        click = {"type": "block_actions", "user": {"id": "U1", "username": "oncall"},
                 "actions": [{"action_id": "approve", "value": button["value"]}]}
        forged_body, forged_headers = _slack_request(click, secret="wrong")
        forged = client.post("/api/v1/integrations/slack/interactions", content=forged_body, headers=forged_headers)
        assert forged.status_code == 401
        body, headers = _slack_request(click)
        answer = client.post("/api/v1/integrations/slack/interactions", content=body, headers=headers)
        assert answer.status_code == 200 and "approved by oncall" in answer.json()["text"]

        wait_for(lambda: [r for r in received if r["path"] == "/hook"
                          and json.loads(r["body"])["kind"] == "resolved"], timeout=120, message="resolved webhook")
    hooks = [r for r in received if r["path"] == "/hook"]
    kinds = [json.loads(r["body"])["kind"] for r in hooks]
    assert kinds[0] == "opened" and "approval_requested" in kinds and kinds[-1] == "resolved"
    for hook in hooks:
        verify_signature(hook["body"], header=hook["headers"]["x-aiops-signature"], secret=SECRET)
        assert hook["headers"]["x-aiops-event-id"] == json.loads(hook["body"])["event_id"]
    assert len({h["headers"]["x-aiops-event-id"] for h in hooks}) == len(hooks), "no event sent twice"


def test_slack_signature_rules():
    body = b"payload=%7B%7D"
    now = 1_700_000_000
    import hashlib
    import hmac

    good = "v0=" + hmac.new(b"k", f"v0:{now}:".encode() + body, hashlib.sha256).hexdigest()
    verify_slack(body, timestamp=str(now), signature=good, secret="k", now=now + 10)
    with pytest.raises(SlackVerificationError, match="too old"):
        verify_slack(body, timestamp=str(now), signature=good, secret="k", now=now + 1000)
    with pytest.raises(SlackVerificationError, match="does not match"):
        verify_slack(body + b"x", timestamp=str(now), signature=good, secret="k", now=now)
