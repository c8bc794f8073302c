"""Slack threads through slack-sdk against a loopback Slack Web API, buttons and /aiops back in, PagerDuty pages.

The platform runs embedded (API + Celery worker threads), the incident is a real one (an alert on a
moto EC2 node, the agents diagnose and ask for a reboot), and every Slack/PagerDuty call crosses
HTTP to the fakes in ``fake_slack.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ec2_node, install_settings, wait_for
from tests.platform.fake_slack import FakePagerDuty, FakeSlack

TOKEN = "xoxb-test-token"
CHANNEL = "C0INCIDENTS"
SIGNING = "slack-signing-secret"
PD_KEY = "R0UTINGKEY0000000000000000000000"


def _signed(form: dict, *, secret: str = SIGNING, ts: int | None = None) -> tuple[bytes, dict]:
    body = urlencode(form).encode()
    ts = ts or int(time.time())
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"x-slack-request-timestamp": str(ts), "x-slack-signature": signature,
                  "content-type": "application/x-www-form-urlencoded"}


def _command(client: TestClient, text: str, *, user: str = "U1", secret: str = SIGNING):
    body, headers = _signed({"command": "/aiops", "text": text, "user_id": user, "user_name": "oncall",
                             "channel_id": CHANNEL, "response_url": "http://127.0.0.1:9/unused"}, secret=secret)
    return client.post("/api/v1/integrations/slack/commands", content=body, headers=headers)


@pytest.fixture
def fakes(monkeypatch):
    slack = FakeSlack(token=TOKEN, channels={CHANNEL}, ratelimit_first=1, retry_after=2)
    pager = FakePagerDuty()
    for key, value in {"AIOPS_SLACK_BOT_TOKEN": TOKEN, "AIOPS_SLACK_CHANNEL": CHANNEL,
                       "AIOPS_SLACK_API_URL": slack.base_url, "AIOPS_SLACK_SIGNING_SECRET": SIGNING,
                       "AIOPS_PAGERDUTY_ROUTING_KEY": PD_KEY, "AIOPS_PAGERDUTY_EVENTS_URL": pager.url,
                       "AIOPS_WEBHOOK_BACKOFF_S": "0.5"}.items():
        monkeypatch.setenv(key, value)
    yield slack, pager
    slack.close()
    pager.close()


def _thread(slack: FakeSlack) -> tuple[dict, list[dict]]:
    parents = slack.parents(CHANNEL)
    assert len(parents) == 1, f"one top-level message per incident, got {len(parents)}"
    return parents[0], slack.replies(CHANNEL, parents[0]["ts"])


def _approval_reply(slack: FakeSlack) -> list[dict]:
    if len(slack.parents(CHANNEL)) != 1:
        return []
    return [m for m in slack.replies(CHANNEL, slack.parents(CHANNEL)[0]["ts"])
            if any(b.get("type") == "actions" for b in m.get("blocks") or [])]


def test_incident_thread_buttons_and_rate_limit(platform_env, fakes):
    from services.api.app import create_app

    slack, pager = fakes
    install_settings()
    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json={"name": "DiskErrors", "severity": "critical", "node": node,
                                            "summary": "EXT4-fs error: I/O error, SMART failing"})
        ask = wait_for(lambda: _approval_reply(slack), timeout=120, message="approval request in the thread")[0]
        buttons = next(b for b in ask["blocks"] if b["type"] == "actions")["elements"]
        assert [b["action_id"] for b in buttons] == ["approve", "reject"]

        click = {"type": "block_actions", "user": {"id": "U1", "username": "oncall"},
                 "channel": {"id": CHANNEL}, "container": {"type": "message", "message_ts": ask["ts"],
                                                           "channel_id": CHANNEL},
                 "actions": [{"action_id": "approve", "value": buttons[0]["value"]}]}
        forged_body, forged_headers = _signed({"payload": json.dumps(click)}, secret="wrong")
        assert client.post("/api/v1/integrations/slack/interactions", content=forged_body,
                           headers=forged_headers).status_code == 401
        stale_body, stale_headers = _signed({"payload": json.dumps(click)}, ts=int(time.time()) - 600)
        assert client.post("/api/v1/integrations/slack/interactions", content=stale_body,
                           headers=stale_headers).status_code == 401
        body, headers = _signed({"payload": json.dumps(click)})
        answer = client.post("/api/v1/integrations/slack/interactions", content=body, headers=headers)
        assert answer.status_code == 200 and "approved by oncall" in answer.json()["text"]
        # the buttons are gone from the approval message: it says who decided
        decided = slack.messages[(CHANNEL, ask["ts"])]
        assert "approved by oncall" in decided["text"] and not any(b["type"] == "actions" for b in decided["blocks"])
        # a second click (or the same request replayed within Slack's five minutes) decides nothing
        again = client.post("/api/v1/integrations/slack/interactions", content=body, headers=headers)
        assert again.status_code == 200 and "already approved" in again.json()["text"]

        wait_for(lambda: [m for m in _thread(slack)[1] if m["text"].startswith("resolved")], timeout=120,
                 message="resolution in the thread")
        parent, replies = _thread(slack)
        status = _command(client, "status")
        assert status.status_code == 200 and status.json()["response_type"] == "ephemeral"

    posted = [c["args"] for c in slack.ok_calls("chat.postMessage") if c["args"].get("thread_ts") == parent["ts"]]
    assert len(posted) == len(replies)
    kinds = [m["text"].split(":", 1)[0] for m in posted]
    # every step a person follows, in the order it happened, as replies of one thread
    for earlier, later in [("diagnosed", "planned"), ("planned", "approval_requested"),
                           ("approval_requested", "approval"), ("approval", "executed"), ("executed", "verified"),
                           ("verified", "resolved")]:
        assert kinds.index(earlier) < kinds.index(later), kinds
    assert len(kinds) == len(set(kinds)), f"a step posted twice: {kinds}"
    assert "opened" not in kinds  # the parent is the opening
    # the parent was edited to the current status with chat.update
    assert "resolved" in parent["text"] and parent["text"].startswith("#")
    updates = [c for c in slack.ok_calls("chat.update") if c["args"]["ts"] == parent["ts"]]
    assert len(updates) >= len(replies) - 1
    # the first call was rate limited: the next one came no sooner than Retry-After
    limited = next(i for i, c in enumerate(slack.calls) if c.get("status") == 429)
    assert slack.calls[limited + 1]["at"] - slack.calls[limited]["at"] >= 2.0
    # nothing was escalated and no approval waited 15 minutes: nobody was paged, so no resolve either
    assert pager.events == []


def test_approval_waiting_pages_and_slash_commands(platform_env, fakes, monkeypatch):
    from services.api.app import create_app

    slack, pager = fakes
    slack.ratelimit_left = 0
    monkeypatch.setenv("AIOPS_PAGE_AFTER_APPROVAL_WAIT_S", "1")
    monkeypatch.setenv("AIOPS_WEBHOOK_SWEEP_INTERVAL_S", "1")
    monkeypatch.setenv("AIOPS_SLACK_APPROVER_IDS", json.dumps(["U1"]))
    install_settings()
    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json={"name": "DiskErrors", "severity": "critical", "node": node,
                                            "summary": "EXT4-fs error: I/O error, SMART failing"})
        wait_for(lambda: _approval_reply(slack), timeout=120, message="approval request in the thread")
        incident_id = client.get("/api/v1/incidents").json()["items"][0]["id"]
        # nobody decides: the embedded sweeper pages a person (no API restart, no beat)
        trigger = wait_for(lambda: pager.events, timeout=60, message="PagerDuty trigger")[0]
        assert trigger["event_action"] == "trigger" and trigger["routing_key"] == PD_KEY
        assert trigger["dedup_key"] == f"aiops-incident-{incident_id}"
        assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["class"] == "approval_waiting"
        time.sleep(2.5)  # two more sweeps: the same approval is not paged again
        assert len(pager.events) == 1

        assert _command(client, "status", secret="wrong").status_code == 401
        listed = _command(client, "status").json()["text"]
        assert f"#{incident_id}" in listed
        assert "waiting for approval" in _command(client, f"status {incident_id}").json()["text"]
        assert "not allowed" in _command(client, f"ack {incident_id}", user="U2").json()["text"]
        assert "acknowledged" in _command(client, f"ack {incident_id}").json()["text"]
        assert "already acknowledged" in _command(client, f"ack {incident_id}").json()["text"]
        assert "not an incident id" in _command(client, "reject abc").json()["text"]
        assert "/aiops status" in _command(client, "frobnicate").json()["text"]
        rejected = _command(client, f"reject {incident_id} disk is fine, replacing it in the morning").json()
        assert rejected["response_type"] == "in_channel" and "rejected" in rejected["text"]
        assert "no approval waiting" in _command(client, f"approve {incident_id}").json()["text"]

        # rejected = handed to a person: paged again under the same dedup key
        wait_for(lambda: [e for e in pager.events if e["payload"]["class"] == "rejected"] if len(pager.events) > 1
                 else [], timeout=120, message="escalation page")
        # the person resolves it by hand: PagerDuty's incident is resolved with the same key
        client.post(f"/api/v1/incidents/{incident_id}/resolve", json={"reason": "disk replaced"})
        resolve = wait_for(lambda: [e for e in pager.events if e["event_action"] == "resolve"], timeout=60,
                           message="PagerDuty resolve")[0]
        assert resolve["dedup_key"] == f"aiops-incident-{incident_id}"
        wait_for(lambda: [m for m in _thread(slack)[1] if m["text"].startswith("resolved")], timeout=60,
                 message="hand resolve in the thread")
        parent, _ = _thread(slack)
    kinds = [c["args"]["text"].split(":", 1)[0] for c in slack.ok_calls("chat.postMessage")
             if c["args"].get("thread_ts") == parent["ts"]]
    assert "acknowledged" in kinds and kinds.index("approval_requested") < kinds.index("rejected")
    assert {e["dedup_key"] for e in pager.events} == {f"aiops-incident-{incident_id}"}


def test_slack_and_pagerduty_outage_loses_nothing_and_keeps_thread_order(platform_env, fakes, monkeypatch):
    """Slack and PagerDuty answer 503 while incidents open and the agents work; then they recover.

    Every staged row is delivered once: one parent per incident, each step once, in the order staged.
    """
    from sqlalchemy import select

    from services.api.app import create_app
    from services.notify.models import WebhookDelivery
    from services.storage.base import session_scope

    slack, pager = fakes
    slack.ratelimit_left = 0
    slack.mode = pager.mode = 503
    for key, value in {"AIOPS_WEBHOOK_BACKOFF_S": "0.5", "AIOPS_WEBHOOK_BACKOFF_MAX_S": "2",
                       "AIOPS_WEBHOOK_MAX_ATTEMPTS": "200", "AIOPS_WEBHOOK_SWEEP_INTERVAL_S": "1"}.items():
        monkeypatch.setenv(key, value)
    settings = install_settings()

    def rows() -> list[WebhookDelivery]:
        with session_scope(settings.database_url) as session:
            found = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
            session.expunge_all()
            return list(found)

    services = [f"svc-{i}" for i in range(6)]
    with TestClient(create_app()) as client:
        for service in services:
            assert client.post("/api/v1/alerts", json={"name": "ErrorRateHigh", "severity": "critical",
                                                       "service": service, "summary": "5xx above 5%"}).status_code == 202
        # the outage lasts until every incident has been handed over (escalated) and every thread's first row
        # and every page were refused at least once (a thread's later steps wait for its first one)
        wait_for(lambda: len([r for r in rows() if r.kind == "escalated"]) >= 2 * len(services)
                 and all(r.attempts >= 1 for r in rows() if r.kind == "opened" or r.destination_kind == "pagerduty"),
                 timeout=180,
                 message="incidents escalated during the outage")
        refused_slack = sum(1 for c in slack.calls if c.get("status") == 503)
        slack.mode = pager.mode = "ok"
        wait_for(lambda: all(r.status != "pending" for r in rows()), timeout=180, message="outbox drained")
        final = rows()

    slack_rows = [r for r in final if r.destination_kind == "slack_api"]
    page_rows = [r for r in final if r.destination_kind == "pagerduty"]
    delivered = [r for r in final if r.status == "delivered"]
    dead = [r for r in final if r.status == "dead"]
    lost = len(final) - len(delivered) - len(dead)
    retries = sum(r.attempts for r in final) - len(final)
    print(f"\nSlack+PagerDuty outage: staged {len(final)} (slack {len(slack_rows)}, pagerduty {len(page_rows)}), "
          f"delivered {len(delivered)}, dead-lettered {len(dead)}, lost {lost}; {retries} retries; refused: "
          f"slack {refused_slack} calls, pagerduty {pager.refused}")
    assert dead == [] and lost == 0

    parents = slack.parents(CHANNEL)
    assert len(parents) == len(services), "one top-level message per incident"
    replies_posted = [c["args"] for c in slack.ok_calls("chat.postMessage") if c["args"].get("thread_ts")]
    for parent in parents:
        incident_id = int(parent["text"].split()[0].lstrip("#"))
        staged = [json.loads(r.body) for r in slack_rows if r.incident_id == incident_id]
        posted = [m["text"] for m in replies_posted if m["thread_ts"] == parent["ts"]]
        expected = [f"{e['kind']}: {e['message']}"[:3000] for e in staged if e["kind"] != "opened"]
        assert posted == expected, f"incident {incident_id}: each step once, in order"
        assert "escalated" in parent["text"]
    # PagerDuty: one trigger per escalated incident (same dedup key per incident), nothing twice
    assert len(pager.events) == len(page_rows) == len(services)
    assert {e["dedup_key"] for e in pager.events} == {f"aiops-incident-{r.incident_id}" for r in page_rows}
