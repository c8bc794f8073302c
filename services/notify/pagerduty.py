"""Paging a person through PagerDuty Events API v2 (out), through the same outbox as webhooks.

WHY PagerDuty's Events API: it is what on-call rotations already page from, and its ``dedup_key``
makes paging idempotent: every page of one incident uses ``aiops-incident-<id>``, so a retried
trigger (or an escalation after an approval page) is one PagerDuty incident, and the resolve sent
when our incident resolves closes it.

A person is paged when the agents escalate (``escalated``, ``rejected``, ``blocked``: the incident is
handed to a person) or when an approval has waited longer than ``page_after_approval_wait_s`` (the
``approval_waiting`` event staged by ``scheduled.page_waiting_approvals``, once per approval). A resolve is sent
only for an incident that was paged.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.config import Settings
from services.notify.models import WebhookDelivery

TRIGGER_KINDS = {"escalated", "rejected", "blocked", "approval_waiting"}
RESOLVE_KINDS = {"resolved", "self_recovered"}
PAGE_KINDS = TRIGGER_KINDS | RESOLVE_KINDS
SEVERITY = {"critical": "critical", "high": "error", "warning": "warning", "info": "info"}


def destination(settings: Settings, routing_key: str) -> str:
    """The outbox destination: the events URL and a digest of the key (the key itself stays out of listings)."""
    return f"{settings.pagerduty_events_url}#{hashlib.sha256(routing_key.encode()).hexdigest()[:12]}"


def url_of(destination_value: str) -> str:
    return destination_value.split("#", 1)[0]


def dedup_key(incident_id: int) -> str:
    return f"aiops-incident-{incident_id}"


def was_paged(session: Session, *, incident_id: int, destination_value: str) -> bool:
    """Whether a trigger for this incident was staged to this destination (a resolve is sent only then)."""
    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.incident_id == incident_id, WebhookDelivery.destination == destination_value,
        WebhookDelivery.kind.in_(sorted(TRIGGER_KINDS))).limit(1)) is not None


def page_body(event: dict[str, Any], *, routing_key: str, labels: dict[str, str | None],
              console_url: str | None) -> dict[str, Any]:
    """The Events v2 body: a trigger with the incident's summary and links, or a resolve by ``dedup_key``."""
    incident_id = int(event["incident_id"])
    if event["kind"] in RESOLVE_KINDS:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(incident_id)}
    source = labels.get("node") or labels.get("service") or labels.get("cluster") or "aiops"
    body: dict[str, Any] = {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup_key(incident_id),
        "client": "aiops",
        "payload": {
            "summary": f"#{incident_id} {event['title']}: {event['message']}"[:1024],
            "source": str(source)[:255], "severity": SEVERITY.get(str(labels.get("severity")), "error"),
            "component": labels.get("service") or labels.get("node"), "group": labels.get("cluster"),
            "class": event["kind"],
            "custom_details": {"kind": event["kind"], "event_id": event["event_id"], **(event.get("data") or {})},
        },
    }
    if console_url:
        href = f"{console_url.rstrip('/')}/incidents/{incident_id}"
        body["client_url"] = href
        body["links"] = [{"href": href, "text": "open in the AIOps console"}]
    return body


def waiting_event_id(approval_id: int) -> str:
    """One page per approval however often the sweep runs: the event id is derived from the approval."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aiops:approval-waiting:{approval_id}"))
