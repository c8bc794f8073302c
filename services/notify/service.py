"""Notifications out (generic webhooks signed with HMAC, Slack incoming webhooks with buttons) and
Slack interactivity in (signed requests that approve or reject a pending mitigation)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from services.config import Settings
from services.worker.queue import NOTIFY, enqueue

NOTIFY_KINDS = {"opened", "approval_requested", "resolved", "escalated", "rejected", "drift_proposed"}


def notify_event(settings: Settings, *, incident_id: int, title: str, kind: str, message: str,
                 data: dict[str, Any], priority: int = 3) -> None:
    """Queue a notification on the ``notify`` queue when the kind matters and a channel is configured."""
    if kind not in NOTIFY_KINDS or not (settings.webhook_urls or settings.slack_webhook_url):
        return
    enqueue(NOTIFY, {"incident_id": incident_id, "title": title, "kind": kind, "message": message, "data": data},
            priority=priority)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_blocks(event: dict[str, Any], *, console_url: str | None) -> dict[str, Any]:
    """Block Kit message; approval requests carry Approve/Reject buttons whose value is the approval id."""
    # incident 0 is a drift event (``reconcile_workspace``): link its review page, else the incident's page
    path = f"/incidents/{event['incident_id']}" if event.get("incident_id") else "/drift"
    link = f"<{console_url.rstrip('/')}{path}|open in console>" if console_url else ""
    text = f"*#{event['incident_id']} {event['title']}* — {event['message']}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{text} {link}".strip()}}]
    approval_id = event.get("data", {}).get("approval_id")
    if event["kind"] == "approval_requested" and approval_id:
        blocks.append({"type": "actions", "block_id": f"approval-{approval_id}", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": str(approval_id),
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": str(approval_id),
             "text": {"type": "plain_text", "text": "Reject"}},
        ]})
    return {"text": text, "blocks": blocks}


def deliver(event: dict[str, Any], *, webhook_urls: list[str], webhook_secret: str | None,
            slack_webhook_url: str | None, console_url: str | None, timeout_s: float = 10.0) -> dict[str, int]:
    """POST the event everywhere configured; raises on a failed delivery so the task retries it."""
    statuses: dict[str, int] = {}
    body = json.dumps(event, sort_keys=True, default=str).encode()
    with httpx.Client(timeout=timeout_s) as client:
        for url in webhook_urls:
            headers = {"content-type": "application/json", "x-aiops-event": event["kind"],
                       "x-aiops-timestamp": str(int(time.time()))}
            if webhook_secret:
                headers["x-aiops-signature"] = sign(body, webhook_secret)
            response = client.post(url, content=body, headers=headers)
            response.raise_for_status()
            statuses[url] = response.status_code
        if slack_webhook_url:
            response = client.post(slack_webhook_url, json=slack_blocks(event, console_url=console_url))
            response.raise_for_status()
            statuses["slack"] = response.status_code
    return statuses


class SlackVerificationError(ValueError):
    pass


def verify_slack(body: bytes, *, timestamp: str | None, signature: str | None, secret: str,
                 now: float | None = None, tolerance_s: int = 300) -> None:
    """Slack's v0 request signing: HMAC-SHA256 of ``v0:{timestamp}:{body}``, fresh within five minutes."""
    if not timestamp or not signature:
        raise SlackVerificationError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        age = abs((now or time.time()) - int(timestamp))
    except ValueError:
        raise SlackVerificationError("X-Slack-Request-Timestamp is not a number") from None
    if age > tolerance_s:
        raise SlackVerificationError("request timestamp is too old (replay?)")
    expected = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SlackVerificationError("signature does not match")
