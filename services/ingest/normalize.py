"""Turn the alert formats operators already emit into ``NormalizedAlert``s.

Accepted: Alertmanager webhook v4 (and Grafana unified alerting, which sends the same body plus
``orgId``), Datadog webhooks, CloudWatch alarms (raw, SNS HTTP notification, or the
SNS->Lambda ``Records`` envelope) and a generic JSON object (one alert or a list). Anything else is
an ``IngestError`` whose message is the 4xx ``detail`` the sender sees.

Nothing is silently changed: a field of the wrong type, an unknown status or an unreadable time
is refused with the field named; a ``null`` label stays ``null``; numbers in labels keep their JSON
text. Lengths match the columns they are stored in (``NormalizedAlert``).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.alerts.models import NormalizedAlert
from services.ingest.safejson import JsonRejected, parse_json

SEVERITIES = ("critical", "high", "warning", "info")
STATUSES = ("firing", "resolved")
MAX_ALERTS = 1000  # per request: bounds one transaction; senders batch far less (Alertmanager: one group)
_SEVERITY_ALIASES = {"page": "critical", "error": "high", "major": "high", "minor": "warning", "low": "info"}


class IngestError(ValueError):
    """A payload that cannot be turned into alerts; the text says what is wrong and where."""


def normalize(payload: Any) -> list[NormalizedAlert]:
    if isinstance(payload, list):
        if not payload:
            raise IngestError("empty list: send at least one alert")
        if len(payload) > MAX_ALERTS:
            raise IngestError(f"{len(payload)} items in one request; send at most {MAX_ALERTS}")
        alerts = [a for i, item in enumerate(payload) for a in _normalize_one(item, where=f"[{i}]")]
    else:
        alerts = _normalize_one(payload, where="body")
    if len(alerts) > MAX_ALERTS:
        raise IngestError(f"{len(alerts)} alerts in one request; send at most {MAX_ALERTS}")
    return alerts


def _normalize_one(payload: Any, *, where: str) -> list[NormalizedAlert]:
    if not isinstance(payload, dict):
        raise IngestError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    if "event_action" in payload and ("routing_key" in payload or "payload" in payload):
        raise IngestError(f"{where}: this is a PagerDuty Events v2 event; POST it to /api/v1/alerts/pagerduty/enqueue")
    if payload.get("Type") in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise IngestError(f"{where}: an SNS {payload['Type']} is not an alert; it is answered only as a whole body")
    if "alerts" in payload and ("version" in payload or "groupKey" in payload):
        return _alertmanager(payload, where=where)
    if "Records" in payload:
        return [a for i, r in enumerate(_list(payload["Records"], f"{where}.Records"))
                for a in _sns_record(r, where=f"{where}.Records[{i}]")]
    if payload.get("Type") == "Notification" and "Message" in payload:
        return _cloudwatch(_json_message(payload["Message"], where=f"{where}.Message"), where=where, raw=payload)
    if "AlarmName" in payload:
        return _cloudwatch(payload, where=where, raw=payload)
    if isinstance(payload.get("alert"), dict) and "action" in payload and (
            "integrationName" in payload or "integrationId" in payload):
        return [_opsgenie(payload, where=where)]
    if isinstance(payload.get("org"), dict) and "title" in payload and (
            "event_type" in payload or "alert_transition" in payload):
        return [_datadog(payload, where=where)]
    return [_generic(payload, where=where)]


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise IngestError(f"{where}: expected a list")
    return value


def _json_message(message: Any, *, where: str) -> dict:
    if isinstance(message, dict):
        parsed = message
    elif isinstance(message, str):
        try:
            parsed = parse_json(message.encode())  # the same limits as a body: no NaN, no 5,000-digit numbers
        except JsonRejected as exc:
            raise IngestError(f"{where}: SNS message is not a CloudWatch alarm JSON document ({exc})") from None
    else:
        raise IngestError(f"{where}: SNS message is not a CloudWatch alarm JSON document (got {_kind(message)})")
    if not isinstance(parsed, dict) or "AlarmName" not in parsed:
        raise IngestError(f"{where}: SNS message is not a CloudWatch alarm (no AlarmName)")
    return parsed


def _severity(value: Any) -> str:
    text = str(value or "warning").lower()
    text = _SEVERITY_ALIASES.get(text, text)
    return text if text in SEVERITIES else "warning"


def _text(value: Any, where: str) -> str | None:
    """A string field as sent; numbers keep their JSON text; objects, lists and booleans are refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    raise IngestError(f"{where}: expected a string, got {_kind(value)}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), type(value).__name__)


def _status(value: Any, where: str) -> str:
    text = _text(value, where)
    if text is None or text == "":
        return "firing"
    if text.strip().lower() not in STATUSES:
        raise IngestError(f"{where}: unknown status {text[:50]!r}; expected one of {', '.join(STATUSES)}")
    return text.strip().lower()


def _time(value: Any, where: str = "startsAt") -> datetime | None:
    """A sender's timestamp; empty or Alertmanager's zero time is "not given", anything unreadable is refused."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise IngestError(f"{where}: expected an RFC 3339 timestamp string, got {_kind(value)}")
    if value.startswith("0001-01-01"):
        return None
    parsed = _parse_time(value)
    if parsed is None:
        raise IngestError(f"{where}: {value[:60]!r} is not an RFC 3339 timestamp")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _parse_time(value: str) -> datetime | None:
    text = value.replace("Z", "+00:00")
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


def _strs(value: Any, where: str) -> dict[str, str | None]:
    """Labels/annotations: strings kept, ``null`` kept as null, numbers as their JSON text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IngestError(f"{where}: expected an object of strings, got {_kind(value)}")
    return {k: _text(v, f"{where}.{k}") for k, v in value.items()}


def _alertmanager(payload: dict, *, where: str) -> list[NormalizedAlert]:
    alerts = _list(payload.get("alerts"), f"{where}.alerts")
    if not alerts:
        raise IngestError(f"{where}.alerts: empty")
    common = _strs(payload.get("commonLabels"), f"{where}.commonLabels")
    grafana = "orgId" in payload  # Grafana unified alerting sends Alertmanager's body plus orgId, title, state
    out = []
    for i, alert in enumerate(alerts):
        here = f"{where}.alerts[{i}]"
        if not isinstance(alert, dict):
            raise IngestError(f"{here}: expected an object")
        labels = {**common, **_strs(alert.get("labels"), f"{here}.labels")}
        annotations = _strs(alert.get("annotations"), f"{here}.annotations")
        if grafana:  # Grafana's extras: what the rule saw and where to look (empty ones dropped)
            for key in ("valueString", "dashboardURL", "panelURL", "silenceURL", "generatorURL"):
                value = _text(alert.get(key), f"{here}.{key}")
                if value:
                    annotations.setdefault(key, value)
        if not labels.get("alertname"):
            raise IngestError(f"{here}.labels: missing alertname")
        out.append(_build(
            here,
            source="grafana" if grafana else "alertmanager",
            name=labels["alertname"],
            status=_status(alert.get("status") or payload.get("status"), f"{here}.status"),
            severity=_severity(labels.get("severity")),
            service=labels.get("service") or labels.get("job"),
            node=labels.get("node") or labels.get("instance"),
            cluster=labels.get("cluster"),
            alert_group=_text(payload.get("groupKey"), f"{where}.groupKey") or None,
            summary=annotations.get("summary") or annotations.get("description") or labels["alertname"],
            labels=labels,
            annotations=annotations,
            starts_at=_time(alert.get("startsAt"), f"{here}.startsAt"),
            fingerprint=_text(alert.get("fingerprint"), f"{here}.fingerprint") or None,
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
    if not isinstance(trigger, dict):
        raise IngestError(f"{where}.Trigger: expected an object, got {_kind(trigger)}")
    dims = {}
    for i, d in enumerate(_list(trigger.get("Dimensions") or [], f"{where}.Trigger.Dimensions")):
        if not isinstance(d, dict):
            raise IngestError(f"{where}.Trigger.Dimensions[{i}]: expected an object with name and value")
        name = _text(d.get("name"), f"{where}.Trigger.Dimensions[{i}].name")
        if name:
            dims[name] = _text(d.get("value"), f"{where}.Trigger.Dimensions[{i}].value")
    alarm_name = _text(alarm["AlarmName"], f"{where}.AlarmName")
    if not alarm_name:
        raise IngestError(f"{where}.AlarmName: empty")
    state = (_text(alarm.get("NewStateValue"), f"{where}.NewStateValue") or "ALARM").upper()
    if state not in {"ALARM", "OK", "INSUFFICIENT_DATA"}:
        raise IngestError(f"{where}.NewStateValue: unknown state {state[:50]!r}; expected ALARM, OK or INSUFFICIENT_DATA")
    labels = {"alertname": alarm_name, "namespace": _text(trigger.get("Namespace"), f"{where}.Trigger.Namespace") or "",
              "metric": _text(trigger.get("MetricName"), f"{where}.Trigger.MetricName") or "",
              "region": _text(alarm.get("Region"), f"{where}.Region") or "", **dims}
    reason = _text(alarm.get("NewStateReason"), f"{where}.NewStateReason")
    description = _text(alarm.get("AlarmDescription"), f"{where}.AlarmDescription")
    return [_build(
        where,
        source="cloudwatch",
        name=alarm_name,
        status="resolved" if state == "OK" else "firing",
        severity="high" if state == "ALARM" else "info",
        service=dims.get("ServiceName") or dims.get("FunctionName") or dims.get("DBInstanceIdentifier"),
        node=dims.get("InstanceId"),
        cluster=dims.get("AutoScalingGroupName") or dims.get("ClusterName"),
        summary=reason or description or alarm_name,
        labels=labels,
        annotations={"description": description or ""},
        starts_at=_time(alarm.get("StateChangeTime"), f"{where}.StateChangeTime"),
        raw=raw,
    )]


_DD_FIRING = ("triggered", "re-triggered", "warn", "no data", "renotify")
_DD_RESOLVED = ("recovered",)
_DD_PRIORITY = {"p1": "critical", "p2": "high", "p3": "warning", "p4": "info", "p5": "info"}
_DD_TAG_PREFIX = re.compile(r"^\s*\[([^\]]*)\]\s*")


def _datadog(payload: dict, *, where: str) -> NormalizedAlert:
    """A Datadog webhook: the default template (title, body, date, org, id) or one that adds
    ``alert_transition``, ``hostname``, ``tags``, ``alert_id``, ``alert_type``, ``priority`` (README).

    Firing or recovered comes from ``alert_transition``, else from the title's ``[Triggered]`` /
    ``[Recovered]`` prefix Datadog writes; the alert's name is the title without those prefixes, so
    a recovery resolves the alert its trigger opened.
    """
    title = _text(payload.get("title"), f"{where}.title") or ""
    prefixes, name = [], title
    while match := _DD_TAG_PREFIX.match(name):
        prefixes.append(match.group(1).strip().lower())
        name = name[match.end():]
    transition = (_text(payload.get("alert_transition"), f"{where}.alert_transition") or "").strip().lower()
    states = [transition] if transition else [p.split(" on ")[0] for p in prefixes]
    if any(s in _DD_RESOLVED for s in states):
        status = "resolved"
    elif any(s in _DD_FIRING for s in states):
        status = "firing"
    else:
        raise IngestError(f"{where}: a Datadog webhook needs alert_transition or a title starting with [Triggered], "
                          f"[Warn], [No Data], [Re-Triggered] or [Recovered]; got title {title[:80]!r}")
    name = name.strip()
    if not name:
        raise IngestError(f"{where}.title: no monitor name after the status prefix")
    tags = {}
    raw_tags = payload.get("tags")
    for tag in (raw_tags if isinstance(raw_tags, list) else str(raw_tags or "").split(",")):
        key, _, value = str(tag).strip().partition(":")
        if key:
            tags[key] = value
    alert_type = (_text(payload.get("alert_type"), f"{where}.alert_type") or "").lower()
    priority = (_text(payload.get("priority"), f"{where}.priority") or "").lower()
    severity = (_DD_PRIORITY.get(priority) or {"error": "high", "warning": "warning", "info": "info",
                                               "success": "info"}.get(alert_type)
                or ("warning" if "warn" in states else "high"))
    host = _text(payload.get("hostname"), f"{where}.hostname") or tags.get("host") or None
    alert_id = _text(payload.get("alert_id"), f"{where}.alert_id")
    body = (_text(payload.get("body"), f"{where}.body") or "").replace("%%%", "").strip()
    return _build(
        where,
        source="datadog",
        name=name[:200],
        status=status,
        severity=severity,
        service=tags.get("service") or None,
        node=host,
        cluster=tags.get("kube_cluster_name") or tags.get("cluster") or None,
        summary=body or name,
        labels={"alertname": name[:200], **({"monitor_id": alert_id} if alert_id else {}),
                **{k: v for k, v in tags.items() if k != "host"}},
        annotations={"title": title, **({"event_type": str(payload["event_type"])} if payload.get("event_type") else {})},
        starts_at=_epoch_ms(payload.get("date"), f"{where}.date"),
        fingerprint=f"{alert_id}:{host or ''}" if alert_id else None,
        raw=payload,
    )


_OG_ACTIONS = {"create": "firing", "close": "resolved", "delete": "resolved"}
_OG_PRIORITY = {"p1": "critical", "p2": "high", "p3": "warning", "p4": "info", "p5": "info"}


def _opsgenie(payload: dict, *, where: str) -> NormalizedAlert:
    """An Opsgenie outgoing-webhook body (``{"action", "alert": {...}, "source", "integrationName"}``).

    ``Create`` fires and ``Close``/``Delete`` resolve; the alert's ``alias`` (Opsgenie's own
    de-duplication key, the alert id when absent) is the fingerprint, so a close resolves what its
    create opened. Other actions (acknowledge, notes, tags, ...) change no alert state here and are
    refused by name: map only Create and Close in Opsgenie's action mapping (README).
    """
    action = (_text(payload.get("action"), f"{where}.action") or "").strip()
    status = _OG_ACTIONS.get(action.lower())
    if status is None:
        raise IngestError(f"{where}.action: Opsgenie action {action[:40]!r} carries no alert state; "
                          "send Create and Close (or Delete) only")
    alert = payload["alert"]
    here = f"{where}.alert"
    message = (_text(alert.get("message"), f"{here}.message") or "").strip()
    if not message:
        raise IngestError(f"{here}.message: an Opsgenie alert needs a message (its title)")
    details = _strs(alert.get("details"), f"{here}.details")
    tags: dict[str, str | None] = {}
    for i, tag in enumerate(_list(alert.get("tags") or [], f"{here}.tags")):
        key, sep, value = (_text(tag, f"{here}.tags[{i}]") or "").partition(":")
        if key.strip():
            tags[key.strip()] = value.strip() if sep else "true"
    entity = _text(alert.get("entity"), f"{here}.entity") or None
    priority = (_text(alert.get("priority"), f"{here}.priority") or "").lower()
    alias = _text(alert.get("alias"), f"{here}.alias") or _text(alert.get("alertId"), f"{here}.alertId")
    node = details.get("host") or details.get("node") or tags.get("host") or entity
    labels = {"alertname": message[:200], **{k: v for k, v in tags.items() if k != "host"},
              **{k: v for k, v in details.items() if k not in {"host", "node"}}}
    if alert.get("tinyId"):
        labels["opsgenie_tiny_id"] = _text(alert.get("tinyId"), f"{here}.tinyId")
    description = (_text(alert.get("description"), f"{here}.description") or "").strip()
    return _build(
        where,
        source="opsgenie",
        name=message[:200],
        status=status,
        severity=_OG_PRIORITY.get(priority) or _severity(tags.get("severity") or details.get("severity")),
        service=details.get("service") or tags.get("service") or None,
        node=node,
        cluster=details.get("cluster") or tags.get("cluster") or None,
        summary=description or message,
        labels=labels,
        annotations={"opsgenie_action": action, **({"entity": entity} if entity else {}),
                     **({"opsgenie_source": str(alert["source"])} if alert.get("source") else {})},
        starts_at=_epoch_ms(alert.get("createdAt"), f"{here}.createdAt"),
        fingerprint=f"opsgenie:{alias}" if alias else None,
        raw=payload,
    )


def _epoch_ms(value: Any, where: str) -> datetime | None:
    """Datadog's ``$DATE``: epoch milliseconds (as text or a number); an RFC 3339 string is read as such."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        number = int(text)
        try:
            return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise IngestError(f"{where}: {text[:30]} is not a time in epoch milliseconds") from None
    return _time(text, where)


def _generic(payload: dict, *, where: str) -> NormalizedAlert:
    key = next((k for k in ("name", "alertname", "title") if payload.get(k) not in (None, "")), None)
    name = _text(payload[key], f"{where}.{key}") if key else None
    if not name:
        raise IngestError(
            f"{where}: unrecognised alert format; send Alertmanager webhook v4, a CloudWatch alarm "
            "(raw or SNS) or a JSON object with at least a 'name'"
        )
    labels = _strs(payload.get("labels"), f"{where}.labels")

    def field(key: str) -> str | None:
        return _text(payload.get(key), f"{where}.{key}")

    time_key = "starts_at" if payload.get("starts_at") not in (None, "") else "startsAt"
    return _build(
        where,
        source=field("source") or "webhook",
        name=name,
        status=_status(payload.get("status"), f"{where}.status"),
        severity=_severity(field("severity") or labels.get("severity")),
        service=field("service") or labels.get("service"),
        node=field("node") or labels.get("node"),
        cluster=field("cluster") or labels.get("cluster"),
        summary=field("summary") or field("message") or name,
        labels=labels,
        annotations=_strs(payload.get("annotations"), f"{where}.annotations"),
        starts_at=_time(payload.get(time_key), f"{where}.{time_key}"),
        fingerprint=field("fingerprint") or None,
        raw=payload,
    )


def fingerprint(alert: NormalizedAlert) -> str:
    """Stable identity of "the same problem": source, name and the identifying labels, not the values."""
    if alert.fingerprint:
        return hashlib.sha256(f"{alert.source}:{alert.fingerprint}".encode()).hexdigest()[:32]
    ident = {k: v for k, v in sorted(alert.labels.items()) if k not in {"severity", "value", "description"}}
    key = json.dumps([alert.source, alert.name, alert.service, alert.node, alert.cluster, ident], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:32]
