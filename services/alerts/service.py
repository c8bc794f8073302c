"""Alert ingestion: store first (so a 202 never loses an alert), deduplicate by fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.alerts.models import Alert, NormalizedAlert
from services.ingest.normalize import fingerprint
from services.storage.base import utcnow


@dataclass
class IngestResult:
    new: list[int] = field(default_factory=list)          # stored, to be handed to the observer
    duplicates: list[int] = field(default_factory=list)   # repeats folded into an existing alert
    resolved: list[int] = field(default_factory=list)     # firing alerts closed by a resolved notice
    incidents_opened: list[int] = field(default_factory=list)  # new incidents, each to be observed once
    incidents_joined: list[int] = field(default_factory=list)  # open incidents that received new alerts

    def to_dict(self) -> dict[str, list[int]]:
        return {"new": self.new, "duplicates": self.duplicates, "resolved": self.resolved,
                "incidents_opened": self.incidents_opened, "incidents_joined": self.incidents_joined}


def resolved_at(incoming: NormalizedAlert) -> datetime:
    """The source's end time (Alertmanager's endsAt, a generic ends_at), else the time we heard of it."""
    raw = incoming.raw or {}
    value = str(raw.get("endsAt") or raw.get("ends_at") or "")
    if value and not value.startswith("0001-01-01"):
        head, dot, rest = value.replace("Z", "+00:00").partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]  # Alertmanager sends nanoseconds
        try:
            parsed = datetime.fromisoformat(f"{head}.{digits[:6]}{rest[len(digits):]}" if dot else head)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return utcnow()


def store_alerts(session: Session, alerts: list[NormalizedAlert], *, group_window_s: int = 900) -> IngestResult:
    """Store, deduplicate and group in one transaction, so alerts sent together share one incident."""
    from agents.priorities import task_priority
    from services.incidents.service import attach_alert

    result = IngestResult()
    for incoming in alerts:
        fp = fingerprint(incoming)
        firing = session.scalars(
            select(Alert).where(Alert.fingerprint == fp, Alert.status == "firing").order_by(Alert.id.desc()).limit(1)
        ).first()
        if incoming.status == "resolved":
            if firing is not None:
                firing.status, firing.last_seen_at = "resolved", utcnow()
                firing.ends_at = resolved_at(incoming)
                result.resolved.append(firing.id)
            continue
        if firing is not None:
            firing.count += 1
            firing.last_seen_at = utcnow()
            result.duplicates.append(firing.id)
            continue
        alert = Alert(
            fingerprint=fp, source=incoming.source, name=incoming.name, status="firing", severity=incoming.severity,
            service=incoming.service, node=incoming.node, cluster=incoming.cluster,
            alert_group=incoming.alert_group, summary=incoming.summary[:2000],
            labels=incoming.labels, annotations=incoming.annotations, raw=incoming.raw,
            starts_at=incoming.starts_at or utcnow(),
        )
        session.add(alert)
        session.flush()
        result.new.append(alert.id)
        incident, created = attach_alert(session, alert, window_s=group_window_s,
                                         priority=task_priority(alert.severity))
        alert.dispatched = True
        target = result.incidents_opened if created else result.incidents_joined
        if incident.id not in result.incidents_opened and incident.id not in target:
            target.append(incident.id)
    return result
