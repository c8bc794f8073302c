"""Incident bookkeeping: grouping alerts into incidents, the timeline, and the agents' store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.actions.models import Action, Approval
from services.alerts.models import Alert
from services.config import Settings
from services.incidents.models import OPEN_STATUSES, Hypothesis, Incident, TimelineEvent
from services.notify.service import notify_event
from services.storage.base import session_scope, utcnow


def approval_dict(a: Approval) -> dict[str, Any]:
    """An approval as the API, Slack and the console show it."""
    return {"id": a.id, "action": a.action_kind, "target": a.target, "risk": a.risk, "reason": a.reason,
            "status": a.status, "decided_by": a.decided_by, "comment": a.comment,
            "created_at": a.created_at.isoformat(), "decided_at": a.decided_at.isoformat() if a.decided_at else None}


def group_key(alert: Alert) -> str:
    """Alerts the sender grouped (Alertmanager's groupKey) share an incident; else same node/service/name."""
    if alert.alert_group:
        return f"{alert.cluster or '-'}|group:{alert.alert_group}"[:300]
    target = f"node:{alert.node}" if alert.node else f"service:{alert.service}" if alert.service else f"alert:{alert.name}"
    return f"{alert.cluster or '-'}|{target}"


def add_event(session: Session, incident_id: int, *, kind: str, actor: str, message: str,
              data: dict | None = None, dedup_key: str | None = None) -> bool:
    """Append to the timeline; with a ``dedup_key`` a repeated step is written only once."""
    if dedup_key is not None:
        exists = session.scalar(select(TimelineEvent.id).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.dedup_key == dedup_key))
        if exists:
            return False
    session.add(TimelineEvent(incident_id=incident_id, kind=kind, actor=actor, message=message,
                              data=data or {}, dedup_key=dedup_key))
    return True


def attach_alert(session: Session, alert: Alert, *, window_s: int, priority: int) -> tuple[Incident, bool]:
    """Put the alert into the open incident of its group (within the window) or open a new one."""
    if alert.incident_id:
        return session.get(Incident, alert.incident_id), False
    key = group_key(alert)
    since = utcnow() - timedelta(seconds=window_s)
    incident = session.scalars(
        select(Incident).where(Incident.group_key == key, Incident.status.in_(OPEN_STATUSES), Incident.opened_at >= since)
        .order_by(Incident.id.desc()).limit(1)
    ).first()
    created = incident is None
    if created:
        incident = Incident(
            title=f"{alert.name} on {alert.node or alert.service or alert.cluster or 'fleet'}",
            severity=alert.severity, group_key=key, service=alert.service, node=alert.node, cluster=alert.cluster,
            summary=alert.summary, priority=priority,
        )
        session.add(incident)
        session.flush()
        add_event(session, incident.id, kind="opened", actor="observer", dedup_key="opened",
                  message=f"incident opened from alert {alert.name}", data={"alert_id": alert.id})
    else:
        add_event(session, incident.id, kind="alert", actor="observer", dedup_key=f"alert:{alert.id}",
                  message=f"alert {alert.name} joined the incident", data={"alert_id": alert.id})
    alert.incident_id = incident.id
    return incident, created


class SqlIncidentStore:
    """``agents.protocols.IncidentStore`` on the platform database; each call is its own transaction."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.url = settings, settings.database_url

    def add_event(self, incident_id: int, *, kind: str, actor: str, message: str,
                  data: dict[str, Any] | None = None, dedup_key: str | None = None) -> None:
        try:
            with session_scope(self.url) as session:
                written = add_event(session, incident_id, kind=kind, actor=actor, message=message, data=data,
                                    dedup_key=dedup_key)
                title = session.get(Incident, incident_id).title
        except IntegrityError:  # a concurrent duplicate of the same step won the race
            return
        if written:
            notify_event(self.settings, incident_id=incident_id, title=title, kind=kind, message=message, data=data or {})

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        resolved = fields.pop("resolved", False)
        with session_scope(self.url) as session:
            incident = session.get(Incident, incident_id)
            for name, value in fields.items():
                setattr(incident, name, value)
            if resolved and incident.resolved_at is None:
                incident.resolved_at = utcnow()
            incident.updated_at = utcnow()

    def save_hypotheses(self, incident_id: int, hypotheses: list[dict[str, Any]]) -> None:
        with session_scope(self.url) as session:
            session.query(Hypothesis).filter(Hypothesis.incident_id == incident_id).delete()
            for h in hypotheses:
                session.add(Hypothesis(incident_id=incident_id, root_cause=h["root_cause"], confidence=h["confidence"],
                                       evidence=h.get("evidence", []), rank=h.get("rank", 0)))

    def request_approval(self, incident_id: int, *, action: str, target: str, risk: str, reason: str,
                         round: int = 0) -> int:
        with session_scope(self.url) as session:
            # LangGraph re-runs the approving node when it resumes: the same request must not be asked twice;
            # round n (after n stale requests) is the (n+1)-th request for this action and target
            earlier = session.scalars(select(Approval).where(
                Approval.incident_id == incident_id, Approval.action_kind == action, Approval.target == target)
                .order_by(Approval.id)).all()
            if len(earlier) > round:
                return earlier[round].id
            approval = Approval(incident_id=incident_id, action_kind=action, target=target, risk=risk, reason=reason)
            session.add(approval)
            session.flush()
            message = f"approval needed: {action} on {target} (risk {risk})"
            add_event(session, incident_id, kind="approval_requested", actor="actor",
                      dedup_key=f"approval_requested:{approval.id}", message=message, data={"approval_id": approval.id})
            approval_id, title = approval.id, session.get(Incident, incident_id).title
        notify_event(self.settings, incident_id=incident_id, title=title, kind="approval_requested", message=message,
                     data={"approval_id": approval_id, "action": action, "target": target, "risk": risk})
        return approval_id

    def source_status(self, incident_id: int) -> dict[str, Any]:
        """How many of the incident's alerts still fire at the source, and when the last one ended."""
        with session_scope(self.url) as session:
            rows = session.execute(select(Alert.status, Alert.ends_at).where(Alert.incident_id == incident_id)).all()
        ended = [e for s, e in rows if s == "resolved" and e is not None]
        return {"firing": sum(1 for s, _ in rows if s == "firing"), "resolved": sum(1 for s, _ in rows if s == "resolved"),
                "ended_at": max(ended).isoformat() if ended else None}

    def begin_action(self, key: str, *, incident_id: int, kind: str, target: str, risk: str,
                     params: dict[str, Any]) -> dict[str, Any] | None:
        with session_scope(self.url) as session:
            existing = session.scalar(select(Action).where(Action.idempotency_key == key))
            if existing is not None and existing.status in {"succeeded", "failed"}:
                return dict(existing.result)
            if existing is None:
                session.add(Action(idempotency_key=key, incident_id=incident_id, kind=kind, target=target, risk=risk,
                                   params=params))
        return None

    def finish_action(self, key: str, *, status: str, result: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            action = session.scalar(select(Action).where(Action.idempotency_key == key))
            action.status, action.result, action.finished_at = status, result, utcnow()

    def actions_in_last_hour(self) -> int:
        with session_scope(self.url) as session:
            return session.scalar(select(func.count(Action.id)).where(Action.started_at >= utcnow() - timedelta(hours=1)))
