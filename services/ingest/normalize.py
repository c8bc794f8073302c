"""Turn the alert formats operators already emit into ``NormalizedAlert``s.

Accepted: Alertmanager webhook v4, CloudWatch alarms (raw, SNS HTTP notification, or the
SNS->Lambda ``Records`` envelope) and a generic JSON object (one alert or a list). Anything else is
an ``IngestError`` whose message is the 4xx ``detail`` the sender sees.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.alerts.models import NormalizedAlert

SEVERITIES = ("critical", "high", "warning", "info")
_SEVERITY_ALIASES = {"page": "critical", "error": "high", "major": "high", "minor": "warning", "low": "info"}


class IngestError(ValueError):
    """A payload that cannot be turned into alerts; the text says what is wrong and where."""


def normalize(payload: Any) -> list[NormalizedAlert]:
    if isinstance(payload, list):
        if not payload:
            raise IngestError("empty list: send at least one alert")
        return [a for i, item in enumerate(payload) for a in _normalize_one(item, where=f"[{i}]")]
    return _normalize_one(payload, where="body")


def _normalize_one(payload: Any, *, where: str) -> list[NormalizedAlert]:
    if not isinstance(payload, dict):
        raise IngestError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    if "alerts" in payload and ("version" in payload or "groupKey" in payload):
        return _alertmanager(payload, where=where)
    if "Records" in payload:
        return [a for i, r in enumerate(_list(payload["Records"], f"{where}.Records"))
                for a in _sns_record(r, where=f"{where}.Records[{i}]")]
    if payload.get("Type") == "Notification" and "Message" in payload:
        return _cloudwatch(_json_message(payload["Message"], where=f"{where}.Message"), where=where, raw=payload)
    if "AlarmName" in payload:
        return _cloudwatch(payload, where=where, raw=payload)
    return [_generic(payload, where=where)]


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise IngestError(f"{where}: expected a list")
    return value


def _json_message(message: Any, *, where: str) -> dict:
    if isinstance(message, dict):
        return message
    try:
        parsed = json.loads(message)
    except (TypeError, json.JSONDecodeError) as exc:
        raise IngestError(f"{where}: SNS message is not a CloudWatch alarm JSON document ({exc})") from None
    if not isinstance(parsed, dict) or "AlarmName" not in parsed:
        raise IngestError(f"{where}: SNS message is not a CloudWatch alarm (no AlarmName)")
    return parsed


def _severity(value: Any) -> str:
    text = str(value or "warning").lower()
    text = _SEVERITY_ALIASES.get(text, text)
    return text if text in SEVERITIES else "warning"


def _time(value: Any) -> datetime | None:
    if not value or str(value).startswith("0001-01-01"):
        return None
    text = str(value).replace("Z", "+00:00")
    # Alertmanager sends nanoseconds; Python keeps microseconds
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        if tz and tz[0] in "+-" and ":" not in tz:
            tz = tz[:3] + ":" + tz[3:]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _build(where: str, **fields: Any) -> NormalizedAlert:
    try:
        return NormalizedAlert(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise IngestError(f"{where}: {problems}") from None


def _strs(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IngestError(f"{where}: expected an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def _alertmanager(payload: dict, *, where: str) -> list[NormalizedAlert]:
    alerts = _list(payload.get("alerts"), f"{where}.alerts")
    if not alerts:
        raise IngestError(f"{where}.alerts: empty")
    common = _strs(payload.get("commonLabels"), f"{where}.commonLabels")
    out = []
    for i, alert in enumerate(alerts):
        here = f"{where}.alerts[{i}]"
        if not isinstance(alert, dict):
            raise IngestError(f"{here}: expected an object")
        labels = {**common, **_strs(alert.get("labels"), f"{here}.labels")}
        annotations = _strs(alert.get("annotations"), f"{here}.annotations")
        if "alertname" not in labels:
            raise IngestError(f"{here}.labels: missing alertname")
        out.append(_build(
            here,
            source="alertmanager",
            name=labels["alertname"],
            status=str(alert.get("status") or payload.get("status") or "firing"),
            severity=_severity(labels.get("severity")),
            service=labels.get("service") or labels.get("job"),
            node=labels.get("node") or labels.get("instance"),
            cluster=labels.get("cluster"),
            alert_group=str(payload["groupKey"]) if payload.get("groupKey") else None,
            summary=annotations.get("summary") or annotations.get("description") or labels["alertname"],
            labels=labels,
            annotations=annotations,
            starts_at=_time(alert.get("startsAt")),
            fingerprint=alert.get("fingerprint") or None,
            raw=alert,
        ))
    return out


def _sns_record(record: Any, *, where: str) -> list[NormalizedAlert]:
    if not isinstance(record, dict) or not isinstance(record.get("Sns"), dict):
        raise IngestError(f"{where}: not an SNS record (no Sns object)")
    sns = record["Sns"]
    return _cloudwatch(_json_message(sns.get("Message"), where=f"{where}.Sns.Message"), where=where, raw=record)


def _cloudwatch(alarm: dict, *, where: str, raw: dict) -> list[NormalizedAlert]:
    trigger = alarm.get("Trigger") or {}
    dims = {str(d.get("name")): str(d.get("value")) for d in trigger.get("Dimensions") or [] if isinstance(d, dict)}
    state = str(alarm.get("NewStateValue", "ALARM")).upper()
    labels = {"alertname": str(alarm["AlarmName"]), "namespace": str(trigger.get("Namespace", "")),
              "metric": str(trigger.get("MetricName", "")), "region": str(alarm.get("Region", "")), **dims}
    return [_build(
        where,
        source="cloudwatch",
        name=str(alarm["AlarmName"]),
        status="resolved" if state == "OK" else "firing",
        severity="high" if state == "ALARM" else "info",
        service=dims.get("ServiceName") or dims.get("FunctionName") or dims.get("DBInstanceIdentifier"),
        node=dims.get("InstanceId"),
        cluster=dims.get("AutoScalingGroupName") or dims.get("ClusterName"),
        summary=str(alarm.get("NewStateReason") or alarm.get("AlarmDescription") or alarm["AlarmName"]),
        labels=labels,
        annotations={"description": str(alarm.get("AlarmDescription") or "")},
        starts_at=_time(alarm.get("StateChangeTime")),
        raw=raw,
    )]


def _generic(payload: dict, *, where: str) -> NormalizedAlert:
    name = payload.get("name") or payload.get("alertname") or payload.get("title")
    if not name:
        raise IngestError(
            f"{where}: unrecognised alert format; send Alertmanager webhook v4, a CloudWatch alarm "
            "(raw or SNS) or a JSON object with at least a 'name'"
        )
    labels = _strs(payload.get("labels"), f"{where}.labels")
    return _build(
        where,
        source=str(payload.get("source") or "webhook"),
        name=str(name),
        status=str(payload.get("status") or "firing"),
        severity=_severity(payload.get("severity") or labels.get("severity")),
        service=payload.get("service") or labels.get("service"),
        node=payload.get("node") or labels.get("node"),
        cluster=payload.get("cluster") or labels.get("cluster"),
        summary=str(payload.get("summary") or payload.get("message") or name),
        labels=labels,
        annotations=_strs(payload.get("annotations"), f"{where}.annotations"),
        starts_at=_time(payload.get("starts_at") or payload.get("startsAt")),
        fingerprint=payload.get("fingerprint"),
        raw=payload,
    )


def fingerprint(alert: NormalizedAlert) -> str:
    """Stable identity of "the same problem": source, name and the identifying labels, not the values."""
    if alert.fingerprint:
        return hashlib.sha256(f"{alert.source}:{alert.fingerprint}".encode()).hexdigest()[:32]
    ident = {k: v for k, v in sorted(alert.labels.items()) if k not in {"severity", "value", "description"}}
    key = json.dumps([alert.source, alert.name, alert.service, alert.node, alert.cluster, ident], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:32]
