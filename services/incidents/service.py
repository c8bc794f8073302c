"""Incident bookkeeping: grouping alerts into incidents, the timeline, and the agents' store."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, case, event, func, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.actions.models import Action, Approval
from services.alerts.models import Alert
from services.audit.service import record
from services.config import Settings
from services.errors import Conflict, Invalid, NotFound, OperationFailed
from services.incidents.correlate import Correlation, correlation_reason, lock_openings, plan_openings
from services.incidents.models import OPEN_STATUSES, Hypothesis, Incident, TimelineEvent
from services.notify.service import kick, stage_event
from services.storage.base import rows_matched, session_scope, utcnow
from services.storage.upsert import dialect_insert

GROUP_KEY_LEN = 300  # incidents.group_key / open_group_key


def approval_dict(a: Approval) -> dict[str, Any]:
    """An approval as the API, Slack and the console show it."""
    return {"id": a.id, "action": a.action_kind, "target": a.target, "risk": a.risk, "reason": a.reason,
            "status": a.status, "decided_by": a.decided_by, "comment": a.comment,
            "created_at": a.created_at.isoformat(), "decided_at": a.decided_at.isoformat() if a.decided_at else None}


def group_key(alert: Alert | Any) -> str:
    """Alerts the sender grouped (Alertmanager's groupKey) share an incident; else same node/service/name.

    Keys longer than the column keep a readable head and end in a hash of the whole key, so two
    long keys that share a prefix are still two groups.
    """
    if alert.alert_group:
        key = f"{alert.cluster or '-'}|group:{alert.alert_group}"
    else:
        target = (f"node:{alert.node}" if alert.node else f"service:{alert.service}" if alert.service
                  else f"alert:{alert.name}")
        key = f"{alert.cluster or '-'}|{target}"
    if len(key) > GROUP_KEY_LEN:
        key = key[:GROUP_KEY_LEN - 65] + "#" + hashlib.sha256(key.encode()).hexdigest()
    return key


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


@dataclass(frozen=True)
class IncidentRef:
    """The columns of an incident the ingest path needs (routing, titles, priority): no ORM object per request."""

    id: int
    title: str
    severity: str
    summary: str
    open_group_key: str | None


_INCIDENTS = cast(Table, Incident.__table__)
_REF_COLUMNS = (_INCIDENTS.c.id, _INCIDENTS.c.title, _INCIDENTS.c.severity, _INCIDENTS.c.summary,
                _INCIDENTS.c.open_group_key)
# statements built once: this runs on every ingest, and building them costs more than running them on SQLite
_HOLDERS = select(*_REF_COLUMNS, _INCIDENTS.c.status, _INCIDENTS.c.opened_at).where(
    _INCIDENTS.c.open_group_key.in_(bindparam("keys", expanding=True)))
_RELEASE = (update(_INCIDENTS).where(_INCIDENTS.c.id.in_(bindparam("ids", expanding=True)))
            .values(open_group_key=None))
@cache
def _open_stmt(dialect: str):
    """``INSERT INTO incidents ... ON CONFLICT (open_group_key) DO NOTHING RETURNING`` the ref columns."""
    return (dialect_insert(dialect)(_INCIDENTS).on_conflict_do_nothing(index_elements=["open_group_key"])
            .returning(*_REF_COLUMNS))


def current_incidents(session: Session, firsts: dict[str, Any], *, window_s: int, priorities: dict[str, int],
                      correlation: Correlation | None = None,
                      correlated: dict[str, dict[str, Any]] | None = None) -> dict[str, tuple[IncidentRef, bool]]:
    """Group key -> (its current incident, whether this call opened it), in one round trip per step.

    ``firsts`` holds, per key, the alert (or its column values) an incident would be opened from.
    The unique ``open_group_key`` makes the database the arbiter: two processes opening the same
    group at once both run ``INSERT ... ON CONFLICT DO NOTHING``; the loser reads the winner's row.
    A holder that is closed or older than the window gives the key up to a new incident.
    Core statements returning only the columns ingest needs: this runs on every alert post.

    A key with no current incident is first correlated (``services.incidents.correlate``): it joins
    an open incident on a connected component, or the incident another key of this batch opens,
    instead of opening its own; ``correlated`` receives, per such key, the reason for the timeline.
    Opening happens under ``lock_openings``, so with several processes one fault has one parent. The lock
    is taken only when a key has no current incident (a stale holder is released under it), so a call
    whose groups are all open writes nothing and waits for no one; the caller must not have written
    before this call (a row lock held while waiting for the opening lock could deadlock two processes).
    """
    out: dict[str, tuple[IncidentRef, bool]] = {}
    since = utcnow() - timedelta(seconds=window_s)
    wanted = list(firsts)
    conn = session.connection()  # Core statements on the session's transaction, without the ORM's execute layer
    insert_open = _open_stmt(conn.dialect.name)
    locked = False
    follows: dict[str, tuple[str, list[str]]] = {}
    for _attempt in range(4):
        stale = []
        for row in conn.execute(_HOLDERS, {"keys": wanted}):
            if row.status in OPEN_STATUSES and row.opened_at >= since:
                out[row.open_group_key] = (IncidentRef(row.id, row.title, row.severity, row.summary or "",
                                                       row.open_group_key), False)
            else:
                stale.append(row.id)
        missing = [k for k in wanted if k not in out and k not in follows]  # a stale holder's key included
        if not missing:
            break
        if not locked:  # then read again: the holder may have been opened while we waited for the lock
            lock_openings(session, {firsts[k].cluster for k in missing})
            locked = True
            continue
        if stale:  # under the lock: no write of this transaction comes before it (no deadlock on the lock)
            conn.execute(_RELEASE, {"ids": stale})
        plan = plan_openings(session, {k: firsts[k] for k in missing}, correlation=correlation or Correlation(window_s=0))
        if plan.joins:
            parents = {i.id: IncidentRef(i.id, i.title, i.severity, i.summary or "", i.open_group_key)
                       for i in session.scalars(select(Incident).where(
                           Incident.id.in_({i for i, _ in plan.joins.values()}))).all()}
            for key, (incident_id, steps) in plan.joins.items():
                out[key] = (parents[incident_id], False)
                if correlated is not None:
                    correlated[key] = correlation_reason(firsts[key], steps, incident_id=incident_id)
        follows.update(plan.follows)
        now = utcnow()
        rows = []
        for key in plan.leaders:
            first = firsts[key]
            where = first.node or first.service or first.cluster or "fleet"
            rows.append({"title": f"{first.name} on {where}"[:300], "status": "open", "severity": first.severity,
                         "group_key": key, "open_group_key": key, "service": first.service, "node": first.node,
                         "cluster": first.cluster, "summary": first.summary or "", "priority": priorities.get(key, 5),
                         "opened_at": now, "updated_at": now})
        if rows:
            for row in conn.execute(insert_open, rows):
                out[row.open_group_key] = (IncidentRef(row.id, row.title, row.severity, row.summary or "",
                                                       row.open_group_key), True)
        wanted = [k for k in plan.leaders if k not in out]  # lost a race: read the winner's row next round
        if not wanted:
            break
    for key, (leader, steps) in follows.items():
        if leader in out:
            incident = out[leader][0]
            out[key] = (incident, False)
            if correlated is not None:
                correlated[key] = correlation_reason(firsts[key], steps, incident_id=incident.id)
    unsettled = [k for k in firsts if k not in out]
    if unsettled:
        raise OperationFailed(f"could not settle the current incident of {len(unsettled)} group(s); retry")
    return out


def attach_alert(session: Session, alert: Alert, *, window_s: int, priority: int) -> tuple[IncidentRef, bool]:
    """Put the alert into the current incident of its group (within the window) or open a new one."""
    if alert.incident_id:
        current = session.get(Incident, alert.incident_id)
        assert current is not None, "alerts.incident_id is a foreign key"
        return IncidentRef(current.id, current.title, current.severity, current.summary or "",
                           current.open_group_key), False
    key = group_key(alert)
    incident, created = current_incidents(session, {key: alert}, window_s=window_s, priorities={key: priority})[key]
    if created:
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
                deliveries: list[int] = []
                if written:  # a repeated step is neither written nor announced
                    incident = session.get(Incident, incident_id)
                    assert incident is not None, "the agents only write to an incident that exists"
                    deliveries = stage_event(session, self.settings, incident_id=incident_id, message=message,
                                             title=incident.title, kind=kind, data=data or {})
        except IntegrityError:  # a concurrent duplicate of the same step won the race
            return
        kick(deliveries)

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        resolved = fields.pop("resolved", False)
        with session_scope(self.url) as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None, "the agents only update an incident that exists"
            for name, value in fields.items():
                setattr(incident, name, value)
            if resolved and incident.resolved_at is None:
                incident.resolved_at = utcnow()
            incident.updated_at = utcnow()

    def save_hypotheses(self, incident_id: int, hypotheses: list[dict[str, Any]]) -> None:
        with session_scope(self.url) as session:
            session.query(Hypothesis).filter(Hypothesis.incident_id == incident_id).delete()
            seen: set[tuple[str, str]] = set()
            for rank, h in enumerate(hypotheses):  # best first; a repeated (component, fault) keeps its best rank
                key = (str(h.get("component") or ""), str(h["root_cause"]))
                if key in seen:
                    continue
                seen.add(key)
                session.add(Hypothesis(incident_id=incident_id, root_cause=h["root_cause"], component=key[0],
                                       component_kind=h.get("component_kind"), confidence=h["confidence"],
                                       evidence=h.get("evidence", []), rank=h.get("rank", rank)))

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
            approval_id = approval.id
            incident = session.get(Incident, incident_id)
            assert incident is not None, "approvals.incident_id is a foreign key"
            deliveries = stage_event(session, self.settings, incident_id=incident_id, kind="approval_requested",
                                     title=incident.title, message=message,
                                     data={"approval_id": approval_id, "action": action, "target": target, "risk": risk})
        kick(deliveries)
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
            assert action is not None, "begin_action wrote the row before the action ran"
            action.status, action.result, action.finished_at = status, result, utcnow()

    def actions_in_last_hour(self) -> int:
        with session_scope(self.url) as session:
            return session.scalar(select(func.count(Action.id))
                                  .where(Action.started_at >= utcnow() - timedelta(hours=1))) or 0


# --- people working an incident: find, own, close, talk (console and API) ---------------------------

SEVERITIES = ("critical", "high", "warning", "info")
SORTS = ("newest", "oldest", "severity", "updated", "priority")
CLOSED_STATUSES = ("resolved", "escalated", "closed")


TIME_PRESETS = ("1h", "6h", "24h", "7d", "30d")
_RELATIVE = re.compile(r"^(\d{1,5})([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """A time bound from the console or API: relative (``90m``, ``24h``, ``7d``, ``2w`` ago) or ISO 8601.

    A naive ISO time is UTC (what the console shows). Anything else is a clear 4xx, not an ignored filter.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return (now or utcnow()) - timedelta(seconds=int(relative.group(1)) * _UNIT_S[relative.group(2)])
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"time {text!r} is neither relative (90m, 24h, 7d, 2w) nor ISO 8601 (2026-11-30T08:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def search_text() -> Any:
    """The text ``q`` searches: title, summary, root cause, service and node joined by spaces.

    Why one expression: PostgreSQL's trigram index (migration 0080) is built on exactly this
    expression, so ``ILIKE '%term%'`` is served by the index instead of scanning five columns; the
    separators are literal SQL (not bound parameters) for the planner to recognise it.
    """
    space: ColumnElement[str] = literal_column("' '")
    parts: list[ColumnElement[str]] = [func.coalesce(column, literal_column("''"))
             for column in (Incident.title, Incident.summary, Incident.root_cause, Incident.service, Incident.node)]
    expr = parts[0]
    for part in parts[1:]:
        expr = expr.op("||")(space).op("||")(part)
    return expr


def incident_query(*, q: str | None = None, status: str | None = None, severity: str | None = None,
                   service: str | None = None, node: str | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> Select:
    """The incidents matching the console's filters (all optional, combined with AND).

    ``q`` matches the title, summary, root cause, service or node (case-insensitive substring), or
    the id when it is a number; ``status`` "active" means any open status; ``since``/``until``
    bound the opening time (``since`` inclusive, ``until`` exclusive).
    """
    query = select(Incident)
    if status == "active":
        query = query.where(Incident.status.in_(OPEN_STATUSES))
    elif status:
        query = query.where(Incident.status == status)
    if severity:
        query = query.where(Incident.severity == severity)
    if service:
        query = query.where(Incident.service == service)
    if node:
        query = query.where(Incident.node == node)
    if since is not None:
        query = query.where(Incident.opened_at >= since)
    if until is not None:
        query = query.where(Incident.opened_at < until)
    if q and q.strip():
        term = q.strip()
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [search_text().ilike(f"%{escaped}%", escape="\\")]
        if term.lstrip("#").isdigit() and len(term) < 10:
            matches.append(Incident.id == int(term.lstrip("#")))
        query = query.where(or_(*matches))
    return query


def incident_order(sort: str | None) -> Any:
    """ORDER BY for a sort name (``SORTS``); the id breaks ties so paging is stable."""
    if sort == "oldest":
        return Incident.id.asc()
    if sort == "severity":
        rank = case({s: i for i, s in enumerate(SEVERITIES)}, value=Incident.severity, else_=len(SEVERITIES))
        return (rank.asc(), Incident.id.desc())
    if sort == "updated":
        return (Incident.updated_at.desc(), Incident.id.desc())
    if sort == "priority":
        return (Incident.priority.asc(), Incident.id.desc())
    return Incident.id.desc()


def _incident_for_change(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return incident


def _changed(session: Session, incident: Incident, *, user: str, kind: str, message: str, data: dict,
             notify: Settings | None = None) -> dict:
    """One person's change: on the incident's timeline and in the audit log, in the same transaction.

    With ``notify`` (the caller's settings) the change is announced like the agents' steps (the Slack
    thread; a hand resolve closes the page) through outbox rows committed with it.
    """
    incident.updated_at = utcnow()
    add_event(session, incident.id, kind=kind, actor=user[:64], message=message, data=data)
    record(session, actor=user, action=f"incident.{kind}", subject=f"incident:{incident.id}", data=data)
    session.flush()
    deliveries = stage_event(session, notify, incident_id=incident.id, title=incident.title, kind=kind,
                             message=message, data=data) if notify is not None else []
    if deliveries:  # queued once the change is committed
        event.listen(session, "after_commit", lambda _s: kick(deliveries), once=True)
    return {"id": incident.id, "status": incident.status, "assignee": incident.assignee,
            "acknowledged_by": incident.acknowledged_by, "severity": incident.severity}


def acknowledge(database_url: str, incident_id: int, *, user: str,
                notify: Settings | None = None) -> dict:
    """Someone is looking at it; acknowledging twice is a conflict naming who did it first."""
    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        if incident.acknowledged_at is not None:
            raise Conflict(f"incident {incident_id} was already acknowledged by {incident.acknowledged_by}")
        incident.acknowledged_by, incident.acknowledged_at = user, utcnow()
        return _changed(session, incident, user=user, kind="acknowledged", message=f"acknowledged by {user}",
                        data={}, notify=notify)


def assign(database_url: str, incident_id: int, *, user: str, assignee: str,
           notify: Settings | None = None) -> dict:
    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        before = incident.assignee
        if before == assignee:
            raise Conflict(f"incident {incident_id} is already assigned to {assignee}")
        incident.assignee = assignee
        return _changed(session, incident, user=user, kind="assigned",
                        message=f"assigned to {assignee}" + (f" (was {before})" if before else ""),
                        data={"assignee": assignee, "before": before}, notify=notify)


def set_severity(database_url: str, incident_id: int, *, user: str, severity: str) -> dict:
    if severity not in SEVERITIES:
        raise Invalid(f"severity must be one of {', '.join(SEVERITIES)}")
    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        before = incident.severity
        if before == severity:
            raise Conflict(f"incident {incident_id} is already {severity}")
        incident.severity = severity
        return _changed(session, incident, user=user, kind="severity", message=f"severity {before} -> {severity}",
                        data={"severity": severity, "before": before})


def close_pending_approvals(session: Session, incident_id: int, *, status: str, by: str,
                            comment: str) -> list[int]:
    """Decide every approval of the incident still pending; returns the ids this call decided.

    One compare-and-set per approval, so a person's decision that got there first wins and is
    never overwritten (a cancel by hand and a stale mark from the source can race a click).
    """
    pending = session.scalars(select(Approval.id).where(Approval.incident_id == incident_id,
                                                        Approval.status == "pending")).all()
    decided = []
    for approval_id in pending:
        claimed = rows_matched(session, cast(Table, Approval.__table__).update()
                               .where(Approval.id == approval_id, Approval.status == "pending")
                               .values(status=status, decided_by=by, decided_at=utcnow(), comment=comment))
        if claimed == 1:
            decided.append(approval_id)
    return decided


def resolve_by_hand(database_url: str, incident_id: int, *, user: str, reason: str,
                    notify: Settings | None = None) -> dict:
    """A person closes the incident; approvals still pending are cancelled so no action runs after it."""
    if not reason.strip():
        raise Invalid("resolving by hand needs a reason")
    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        if incident.status == "resolved":
            raise Conflict(f"incident {incident_id} is already resolved")
        before = incident.status
        incident.status, incident.resolved_at = "resolved", utcnow()
        cancelled = len(close_pending_approvals(session, incident_id, status="cancelled", by=user,
                                                comment=f"incident resolved: {reason}"))
        return _changed(session, incident, user=user, kind="resolved", message=f"resolved by {user}: {reason}",
                        data={"reason": reason, "before": before, "approvals_cancelled": cancelled}, notify=notify)


def reopen(database_url: str, incident_id: int, *, user: str, reason: str,
           notify: Settings | None = None) -> dict:
    if not reason.strip():
        raise Invalid("reopening needs a reason")
    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        if incident.status not in CLOSED_STATUSES:
            raise Conflict(f"incident {incident_id} is {incident.status}, not closed")
        before = incident.status
        incident.status, incident.resolved_at = "open", None
        return _changed(session, incident, user=user, kind="reopened", message=f"reopened by {user}: {reason}",
                        data={"reason": reason, "before": before}, notify=notify)


def comment(database_url: str, incident_id: int, *, user: str, text: str) -> dict:
    if not text.strip():
        raise Invalid("a comment needs text")
    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        return _changed(session, incident, user=user, kind="comment", message=text, data={})


def postmortem_markdown(database_url: str, incident_id: int) -> str:
    """A postmortem draft from what the platform recorded: summary, hypotheses, actions, decisions, timeline."""
    def when(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"

    def cell(value: Any) -> str:
        return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")

    with session_scope(database_url) as session:
        incident = _incident_for_change(session, incident_id)
        events = session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                 .order_by(TimelineEvent.at, TimelineEvent.id)).all()
        hypotheses = session.scalars(select(Hypothesis).where(Hypothesis.incident_id == incident_id)
                                     .order_by(Hypothesis.rank)).all()
        actions = session.scalars(select(Action).where(Action.incident_id == incident_id).order_by(Action.id)).all()
        approvals = session.scalars(select(Approval).where(Approval.incident_id == incident_id)
                                    .order_by(Approval.id)).all()
        alerts = session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id)).all()
        duration = ""
        if incident.resolved_at:
            minutes = (incident.resolved_at - incident.opened_at).total_seconds() / 60
            duration = f" (time to resolve {minutes:.1f} min)"
        lines = [
            f"# Postmortem: incident #{incident.id} {incident.title}", "",
            f"- Status: {incident.status}; severity: {incident.severity}",
            f"- Opened: {when(incident.opened_at)}; resolved: {when(incident.resolved_at)}{duration}",
            f"- Where: service {incident.service or '-'}, node {incident.node or '-'}, cluster {incident.cluster or '-'}",
            f"- Root cause: {incident.root_cause or 'not established'}; mitigation: {incident.mitigation or 'none'}",
            f"- Owner: {incident.assignee or '-'}; acknowledged by {incident.acknowledged_by or '-'}", "",
            "## Summary", "", incident.summary or "(none recorded)", "",
            "## Alerts", "",
        ]
        lines += [f"- {cell(a.name)} ({a.severity}, {a.status}) x{a.count}: {cell(a.summary)}" for a in alerts] or ["- none"]
        lines += ["", "## Hypotheses", "", "| rank | component | root cause | confidence | evidence |", "|---|---|---|---|---|"]
        lines += [f"| {h.rank + 1} | {cell(h.component)} | {cell(h.root_cause)} | {h.confidence:.2f} | "
                  f"{cell('; '.join(map(str, h.evidence)))} |" for h in hypotheses]
        lines += ["", "## Actions", ""]
        lines += [f"- {a.kind} on {a.target} (risk {a.risk}): {a.status}, started {when(a.started_at)}"
                  for a in actions] or ["- none"]
        lines += ["", "## Decisions", ""]
        lines += [f"- {a.action_kind} on {a.target} (risk {a.risk}): {a.status} by {a.decided_by or '-'}"
                  f" at {when(a.decided_at)}" + (f": {a.comment}" if a.comment else "") for a in approvals] or ["- none"]
        lines += ["", "## Timeline", "", "| time (UTC) | kind | who | what |", "|---|---|---|---|"]
        lines += [f"| {when(e.at)} | {cell(e.kind)} | {cell(e.actor)} | {cell(e.message)} |"
                  for e in events if e.kind != "task"]
        lines += ["", "## Follow-ups", "", "- [ ] (write what would have prevented this or made it shorter)", ""]
        return "\n".join(lines)
