"""PagerDuty Events API v2 (``POST /v2/enqueue``) in: any tool that can page PagerDuty can open incidents here.

Why a separate door (``/api/v1/alerts/pagerduty/enqueue``) rather than shape detection on
``/api/v1/alerts``: senders configured for PagerDuty expect PagerDuty's answer (202 with
``status``, ``message`` and the ``dedup_key``; PagerDuty generates the key when a trigger has
none), and an ``acknowledge`` is not an alert at all.

Mapping: ``dedup_key`` is the alert's fingerprint (so a later ``resolve`` closes the alert its
``trigger`` opened); ``payload.source`` is the node, ``payload.component`` the service,
``payload.group`` the cluster; ``error`` severity is our ``high``. ``custom_details`` become
annotations (nested values as JSON text).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from services.alerts.models import NormalizedAlert
from services.ingest.normalize import IngestError, _build, _kind, _text, _time

ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = {"critical": "critical", "error": "high", "warning": "warning", "info": "info"}
SOURCE = "pagerduty"


@dataclass(frozen=True)
class PagerDutyEvent:
    """One parsed Events v2 request: the action, its dedup key, and the alert to store (none for acknowledge)."""

    action: str
    dedup_key: str
    alert: NormalizedAlert | None


def is_pagerduty_event(payload: Any) -> bool:
    return isinstance(payload, dict) and "event_action" in payload and ("routing_key" in payload or "payload" in payload)


def parse_event(payload: Any) -> PagerDutyEvent:
    """Validate like PagerDuty does (same required fields) and map to our alert; `IngestError` says what is wrong."""
    if not isinstance(payload, dict):
        raise IngestError(f"body: expected a PagerDuty Events v2 JSON object, got {_kind(payload)}")
    action = _text(payload.get("event_action"), "event_action")
    if action not in ACTIONS:
        raise IngestError(f"event_action: {str(action)[:30]!r} is not one of {', '.join(ACTIONS)}")
    if not _text(payload.get("routing_key"), "routing_key"):
        raise IngestError("routing_key: required (the integration key of the Events API v2 integration)")
    dedup_key = _text(payload.get("dedup_key"), "dedup_key")
    if dedup_key is not None and not 0 < len(dedup_key) <= 255:
        raise IngestError("dedup_key: must be 1 to 255 characters")
    if action != "trigger":
        if not dedup_key:
            raise IngestError(f"dedup_key: required for {action} (it names the alert to {action})")
        if action == "acknowledge":
            return PagerDutyEvent(action, dedup_key, None)
        return PagerDutyEvent(action, dedup_key, _build(
            "body", source=SOURCE, name=dedup_key[:200], status="resolved", fingerprint=dedup_key, raw=payload))
    dedup_key = dedup_key or uuid.uuid4().hex
    body = payload.get("payload")
    if not isinstance(body, dict):
        raise IngestError("payload: required for trigger (an object with summary, source and severity)")
    summary = _text(body.get("summary"), "payload.summary")
    source = _text(body.get("source"), "payload.source")
    severity = _text(body.get("severity"), "payload.severity")
    for field, value in (("summary", summary), ("source", source), ("severity", severity)):
        if not value:
            raise IngestError(f"payload.{field}: required for trigger")
    assert summary and source and severity  # checked just above (the loop does not narrow their types)
    if severity not in PD_SEVERITIES:
        raise IngestError(f"payload.severity: {severity[:30]!r} is not one of {', '.join(PD_SEVERITIES)}")
    if len(summary) > 1024:
        raise IngestError("payload.summary: at most 1024 characters (PagerDuty's limit)")
    details = body.get("custom_details") or {}
    if not isinstance(details, dict):
        details = {"details": details}
    labels = {k: _text(body.get(k), f"payload.{k}") for k in ("source", "component", "group", "class")
              if body.get(k) is not None}
    return PagerDutyEvent("trigger", dedup_key, _build(
        "payload",
        source=SOURCE,
        name=(_text(body.get("class"), "payload.class") or summary)[:200],
        status="firing",
        severity=PD_SEVERITIES[severity],
        service=labels.get("component"),
        node=source[:200],
        cluster=labels.get("group"),
        summary=summary,
        labels={"alertname": (labels.get("class") or summary)[:200], **labels},
        annotations={str(k): v if isinstance(v, str) else json.dumps(v) for k, v in details.items()},
        starts_at=_time(body.get("timestamp"), "payload.timestamp"),
        fingerprint=dedup_key,
        raw=payload,
    ))
