"""Alert ingestion: store first (so a 202 never loses an alert), deduplicate by fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from services.alerts.models import Alert, NormalizedAlert
from services.incidents.correlate import Correlation
from services.incidents.models import Incident, TimelineEvent
from services.ingest.normalize import fingerprint
from services.storage.base import utcnow
from services.storage.bulk import (
    json_rows,
    recordset_insert,
    sqlite_has_json,
    sqlite_json_rows,
    sqlite_recordset_insert,
)
from services.storage.upsert import dialect_insert


@dataclass
class IngestResult:
    new: list[int] = field(default_factory=list)          # stored, to be handed to the observer
    duplicates: list[int] = field(default_factory=list)   # repeats folded into an existing alert
    resolved: list[int] = field(default_factory=list)     # firing alerts closed by a resolved notice
    incidents_opened: list[int] = field(default_factory=list)  # new incidents, each to be observed once
    incidents_joined: list[int] = field(default_factory=list)  # open incidents that received new alerts
    opened: list[Any] = field(default_factory=list)  # the new incidents' IncidentRefs (titles for notifications)

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


def process_correlation() -> Correlation:
    """This process's correlation settings and its telemetry source's topology (cached, see ``cached_topology``)."""
    from services.incidents.correlate import cached_topology
    from services.worker import runtime

    current = runtime.current()
    settings = current.settings
    if settings.incident_correlation_window_s <= 0:
        return Correlation(window_s=0)
    return Correlation(window_s=settings.incident_correlation_window_s, hops=settings.incident_correlation_hops,
                       topology=cached_topology(current, ttl_s=settings.topology_cache_s))


def process_recurrence_grace_s() -> int:
    """This process's grace after a resolution before a still-firing re-send is a recurrence."""
    from services.worker import runtime

    return runtime.current().settings.alert_recurrence_grace_s


def store_alerts(session: Session, alerts: list[NormalizedAlert], *, group_window_s: int = 900,
                 correlation: Correlation | None = None, recurrence_grace_s: int | None = None) -> IngestResult:
    """Store, deduplicate and group in one transaction, so alerts sent together share one incident.

    A fixed number of statements per request, whatever the batch size: one read of the firing rows
    of the batch's fingerprints, one read/insert of the groups' current incidents, one multi-row
    ``INSERT ... ON CONFLICT DO NOTHING`` of the new alerts (a fingerprint another process stored
    meanwhile becomes a repeat), one insert of the timeline rows. The unique firing fingerprint and
    the unique open group key make the result the same with any number of API processes.

    The alerts of a group that opened a new incident are stored with ``dispatched = false``: they are
    the dispatch outbox (``services.incidents.dispatch``), drained to the observer after the commit.
    A group with no current incident is correlated first (``services.incidents.correlate``): alerts
    of one fault on connected components join one incident, with the reason on its timeline.
    ``correlation`` defaults to this process's settings and telemetry topology. Only a batch with a
    group that has no current incident takes the per-cluster opening lock, and before its first write,
    so the lock is always taken before any row lock (two processes can wait for each other on it, never
    deadlock) and alerts joining open incidents, the common case, never wait for it.

    A firing re-send of an alert whose incident was resolved more than ``recurrence_grace_s`` ago
    (default: this process's setting) is a recurrence (PagerDuty: a new trigger of a resolved key opens
    a new incident): its old row leaves the firing set (status ``recurred``, it stays in the old
    incident's history) and the alert is stored as new, through the same opening lock and unique
    firing fingerprint, so with several processes it recurs once; both timelines say so. Within the
    grace it is a re-send in flight at the resolution and only counts as a repeat. The incident's
    state comes with the firing read (a join), so this costs no statement on the common path.
    """
    return store_batches(session, [alerts], group_window_s=group_window_s, correlation=correlation,
                         recurrence_grace_s=recurrence_grace_s)[0]


def store_batches(session: Session, posts: list[list[NormalizedAlert]], *, group_window_s: int = 900,
                  correlation: Correlation | None = None, recurrence_grace_s: int | None = None,
                  fingerprints: list[list[str]] | None = None) -> list[IngestResult]:
    """``store_alerts`` for several posts at once (group commit): the same fixed number of statements for
    all of them together, and one ``IngestResult`` per post, as if each had been stored alone in turn.

    The caller's posts share no fingerprint and no group key (``services.alerts.group`` sees to it), so
    each stored, repeated or resolved alert and each incident belongs to exactly one post. A group whose
    incident another post's group correlates to is that post's ``incidents_joined``, as it would be
    stored after it. ``fingerprints``: the posts' fingerprints when the caller has them already.
    """
    from agents.priorities import task_priority
    from services.incidents.service import current_incidents, group_key

    results = [IngestResult() for _ in posts]
    owner: dict[str, IngestResult] = {}  # fingerprint -> the result of the post it came in
    alerts: list[NormalizedAlert] = []
    fps: list[str] = []
    for i, post in enumerate(posts):
        post_fps = fingerprints[i] if fingerprints is not None else [fingerprint(a) for a in post]
        for fp in post_fps:
            owner[fp] = results[i]
        alerts.extend(post)
        fps.extend(post_fps)
    now = utcnow()
    conn = session.connection()  # Core statements on the session's transaction, without the ORM's execute layer
    firing: dict[str, int] = {}
    closed: dict[int, tuple[int, datetime]] = {}  # firing alert id -> its resolved incident and when it was resolved
    for alert_id, fp, incident_id, incident_status, incident_resolved_at in conn.execute(
            _FIRING, {"fps": sorted(set(fps))}):
        firing[fp] = alert_id
        if incident_status in _RECUR_AFTER and incident_resolved_at is not None:
            closed[alert_id] = (incident_id, incident_resolved_at)
    recur_before = None
    if closed:  # only then: the setting is not read on the common path
        grace = recurrence_grace_s if recurrence_grace_s is not None else process_recurrence_grace_s()
        recur_before = now - timedelta(seconds=grace)
    recurring: dict[str, tuple[int, int]] = {}  # fingerprint -> (its old alert id, the resolved incident)
    repeats: dict[int, int] = {}  # alert id -> how many repeats this request adds (counted in SQL: no lost update)
    resolved: list[tuple[int, datetime]] = []  # (alert id, the source's end time)
    new_rows: dict[str, dict] = {}  # fingerprint -> the row to insert, in arrival order
    for fp, incoming in zip(fps, alerts, strict=True):
        if incoming.status == "resolved":
            alert_id = firing.pop(fp, None)
            if alert_id is not None:
                resolved.append((alert_id, resolved_at(incoming)))
                owner[fp].resolved.append(alert_id)
            continue
        old = closed.get(firing.get(fp, 0))
        if old is not None and recur_before is not None and old[1] <= recur_before:
            recurring[fp] = (firing.pop(fp), old[0])  # still firing after the resolution: stored as new below
        if fp in firing:
            repeats[firing[fp]] = repeats.get(firing[fp], 0) + 1
            owner[fp].duplicates.append(firing[fp])
        elif fp in new_rows:
            new_rows[fp]["count"] += 1
        else:
            new_rows[fp] = {
                "fingerprint": fp, "source": incoming.source, "name": incoming.name, "status": "firing",
                "severity": incoming.severity, "service": incoming.service, "node": incoming.node,
                "cluster": incoming.cluster, "alert_group": incoming.alert_group,
                "summary": incoming.summary[:2000], "labels": incoming.labels, "annotations": incoming.annotations,
                "raw": incoming.raw, "starts_at": incoming.starts_at or now, "received_at": now, "last_seen_at": now,
                "count": 1, "dispatched": True,
            }
    groups: dict[str, list[dict]] = {}
    correlated: dict[str, dict] = {}
    incidents: dict[str, Any] = {}
    if new_rows:  # first, before any write: it may wait for the opening lock (see ``current_incidents``)
        for row in new_rows.values():
            groups.setdefault(group_key(_Row(row)), []).append(row)
        correlation = correlation if correlation is not None else process_correlation()  # before the lock
        incidents = current_incidents(
            session, {k: _Row(rows[0]) for k, rows in groups.items()}, window_s=group_window_s,
            priorities={k: task_priority(rows[0]["severity"]) for k, rows in groups.items()},
            correlation=correlation, correlated=correlated)
    if repeats:
        conn.execute(_REPEAT, [{"b_id": i, "b_n": n, "b_now": now} for i, n in repeats.items()])
    if resolved:  # before the insert: a batch that resolves then re-fires a fingerprint stores a new row
        conn.execute(_RESOLVE, [{"b_id": i, "b_now": now, "b_end": end} for i, end in resolved])
    retired: set[int] = set()
    if recurring:  # after the opening lock (current_incidents), before the insert; another process's retire wins
        retired = set(conn.execute(_RETIRE, {"ids": sorted(i for i, _ in recurring.values())}).scalars())
    if not new_rows:
        return results

    for key, rows in groups.items():
        incident, created = incidents[key]
        for row in rows:
            row["incident_id"] = incident.id
            row["dispatched"] = not created  # a new incident waits in the outbox for the dispatcher

    if conn.dialect.name == "postgresql":  # one parameter: the statement text is the same for any batch size
        inserted = conn.execute(_pg_insert_new(), {"rows": json_rows(list(new_rows.values()))})
    else:
        inserted = (conn.execute(_sqlite_insert_new(), {"rows": sqlite_json_rows(list(new_rows.values()))})
                    if _SQLITE_JSON else conn.execute(_insert_new(conn.dialect.name), list(new_rows.values())))
    stored = dict((fp, alert_id) for alert_id, fp in inserted.all())
    for fp, row in new_rows.items():
        if fp not in stored:  # another process stored this fingerprint first: ours is a repeat of it
            alert_id = conn.execute(
                update(_ALERTS).where(_ALERTS.c.fingerprint == fp, _ALERTS.c.status == "firing")
                .values(count=_ALERTS.c.count + row["count"], last_seen_at=now).returning(_ALERTS.c.id)).scalar()
            if alert_id is not None:
                owner[fp].duplicates.append(alert_id)
            continue
        owner[fp].new.append(stored[fp])
        owner[fp].duplicates.extend([stored[fp]] * (row["count"] - 1))

    events = []
    for key, rows in groups.items():
        incident, created = incidents[key]
        for i, row in enumerate(rows):
            alert_id = stored.get(row["fingerprint"])
            if alert_id is None:
                continue
            if created and i == 0:
                events.append({"incident_id": incident.id, "kind": "opened", "actor": "observer", "at": now,
                               "dedup_key": "opened", "message": f"incident opened from alert {row['name']}",
                               "data": {"alert_id": alert_id}})
            elif key in correlated and i == 0:  # the group's first alert says why the group is here
                why = correlated[key]
                events.append({"incident_id": incident.id, "kind": "correlated", "actor": "observer", "at": now,
                               "dedup_key": f"alert:{alert_id}", "message": why["message"],
                               "data": {"alert_id": alert_id, "group_key": key, "path": why["path"]}})
            else:
                events.append({"incident_id": incident.id, "kind": "alert", "actor": "observer", "at": now,
                               "dedup_key": f"alert:{alert_id}", "data": {"alert_id": alert_id},
                               "message": f"alert {row['name']} joined the incident"})
            if row["fingerprint"] in recurring and recurring[row["fingerprint"]][0] in retired:
                events.extend(_recurrence_events(row, alert_id=alert_id, old=recurring[row["fingerprint"]][1],
                                                 new=incident.id, at=now))
        result = owner[rows[0]["fingerprint"]]  # a group key is one post's
        target = result.incidents_opened if created else result.incidents_joined
        if incident.id not in target:
            target.append(incident.id)
            if created:
                result.opened.append(incident)
    if events and conn.dialect.name == "postgresql":  # one JSON parameter, as the alerts (see _pg_insert_new)
        conn.execute(_pg_insert_events(), {"rows": json_rows(events)})
    elif events and _SQLITE_JSON:
        conn.execute(_sqlite_insert_events(), {"rows": sqlite_json_rows(events)})
    elif events:
        conn.execute(_INSERT_EVENTS, events)  # one executemany, no ORM unit of work
    return results


# statements built once (this is the hot path of the API); Core, not the ORM unit of work
_ALERTS = cast(Table, Alert.__table__)
_REPEAT = (update(_ALERTS).where(_ALERTS.c.id == bindparam("b_id"))
           .values(count=_ALERTS.c.count + bindparam("b_n"), last_seen_at=bindparam("b_now")))
_RESOLVE = (update(_ALERTS).where(_ALERTS.c.id == bindparam("b_id"))
            .values(status="resolved", last_seen_at=bindparam("b_now"), ends_at=bindparam("b_end")))
_INSERT_EVENTS = insert(cast(Table, TimelineEvent.__table__))
_INCIDENTS = cast(Table, Incident.__table__)
# the firing rows of a batch's fingerprints, with their incident's status: a repeat of a resolved one may recur
_FIRING = (select(_ALERTS.c.id, _ALERTS.c.fingerprint, _INCIDENTS.c.id, _INCIDENTS.c.status, _INCIDENTS.c.resolved_at)
           .select_from(_ALERTS.outerjoin(_INCIDENTS, _INCIDENTS.c.id == _ALERTS.c.incident_id))
           .where(_ALERTS.c.fingerprint.in_(bindparam("fps", expanding=True)), _ALERTS.c.status == "firing"))
_RECUR_AFTER = ("resolved", "closed")  # not "escalated": a person holds it, a firing alert is expected there
# a recurring alert's old row leaves the firing set (the new row takes the fingerprint); only one process's does
_RETIRE = (update(_ALERTS).where(_ALERTS.c.id.in_(bindparam("ids", expanding=True)), _ALERTS.c.status == "firing")
           .values(status="recurred").returning(_ALERTS.c.id))
@cache
def _insert_new(dialect: str):
    """``INSERT ... ON CONFLICT (fingerprint) WHERE status = 'firing' DO NOTHING RETURNING id, fingerprint``."""
    return (dialect_insert(dialect)(_ALERTS)
            .on_conflict_do_nothing(index_elements=["fingerprint"], index_where=text("status = 'firing'"))
            .returning(_ALERTS.c.id, _ALERTS.c.fingerprint))


def _recurrence_events(row: dict, *, alert_id: int, old: int, new: int, at: datetime) -> list[dict]:
    """The two timeline entries of a recurrence: on the resolved incident and on the one it recurred in."""
    data = {"alert_id": alert_id, "recurred_from": old, "recurred_as": new}
    return [{"incident_id": old, "kind": "recurred", "actor": "observer", "at": at, "data": data,
             "dedup_key": f"recurred:{alert_id}", "message": f"alert {row['name']} still firing: recurred as #{new}"},
            {"incident_id": new, "kind": "recurrence", "actor": "observer", "at": at, "data": data,
             "dedup_key": f"recurrence:{alert_id}",
             "message": f"alert {row['name']} still firing after #{old} was resolved"}]


# the new alerts' insert: a fingerprint already firing (another process stored it first) is a repeat
_ON_CONFLICT_NEW = " ON CONFLICT (fingerprint) WHERE status = 'firing' DO NOTHING RETURNING id, fingerprint"


@cache
def _pg_insert_new() -> Any:
    """PostgreSQL: the new alerts as one JSON array read by ``json_to_recordset``, same ``ON CONFLICT``.

    WHY: the multi-row ``VALUES`` form has one parameter per cell (170 for a batch of 10), and psycopg
    does not cache the parsing of a statement with more than 50 parameters: splitting that SQL text
    again cost more CPU than the rest of the post. One JSON parameter keeps the text fixed (parsed
    once, then a prepared statement). ``json``, not ``jsonb``: labels and payloads keep their text.
    """
    return recordset_insert(_ALERTS, _NEW_COLUMNS, _ON_CONFLICT_NEW)


@cache
def _pg_insert_events() -> Any:
    """PostgreSQL: the timeline rows of an ingest as one JSON array (one parameter, like ``_pg_insert_new``):
    an ``executemany`` of one row per alert cost more CPU (bind processing, a pipeline) than the rest."""
    return recordset_insert(TimelineEvent.__table__, _EVENT_COLUMNS, "")


_EVENT_COLUMNS = ("incident_id", "at", "kind", "actor", "message", "data", "dedup_key")
_SQLITE_JSON = sqlite_has_json()


@cache
def _sqlite_insert_new() -> Any:
    return sqlite_recordset_insert(_ALERTS, _NEW_COLUMNS, _ON_CONFLICT_NEW)


@cache
def _sqlite_insert_events() -> Any:
    return sqlite_recordset_insert(TimelineEvent.__table__, _EVENT_COLUMNS, "")


# the columns store_alerts fills for a new alert (the keys of its rows)
_NEW_COLUMNS = ("fingerprint", "source", "name", "status", "severity", "service", "node", "cluster", "alert_group",
                "summary", "labels", "annotations", "raw", "starts_at", "received_at", "last_seen_at", "count",
                "dispatched", "incident_id")


class _Row:
    """Attribute access to a row about to be inserted, for ``group_key`` and incident titles."""

    def __init__(self, row: dict) -> None:
        self.__dict__.update(row)


def acknowledge_at_source(session: Session, *, fingerprint: str, actor: str) -> int | None:
    """Note on the incident of a firing alert that its sender acknowledged it (PagerDuty ``acknowledge``).

    Why only a note: an acknowledgement at the source means a person is on it, which the
    operators should see, but it changes nothing the agents decide. Returns the incident id, or
    None when no firing alert has that fingerprint (acknowledging an unknown key is not an error
    for the sender, as at PagerDuty).
    """
    from services.incidents.service import add_event

    row = session.execute(select(Alert.id, Alert.incident_id).where(
        Alert.fingerprint == fingerprint, Alert.status == "firing")).first()
    if row is None or row.incident_id is None:
        return None
    add_event(session, row.incident_id, kind="acknowledged", actor=actor, dedup_key=f"ack:{row.id}",
              message="acknowledged at the source", data={"alert_id": row.id})
    return row.incident_id
