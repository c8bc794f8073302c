"""The dispatch outbox: new incidents reach the observer's queue from the database, not from the request.

WHY: publishing to the broker inside the alert post cost about 1 ms of API CPU per new incident and
made the hand-off depend on the broker being up at that instant. The post now only writes rows in
its one transaction: the alerts that opened an incident are stored with ``dispatched = false``
(the outbox flag the Redis-outage path already used), and a dispatcher drains those rows to
Celery afterwards:

- at least once: a row is marked dispatched only after its task was published, so a dispatcher
  killed between the two leaves the row to be sent again; consumers are idempotent (the observer's
  LangGraph checkpoint says whether it already ran, see ``flows.observe_incident``);
- never by two dispatchers at once, however many processes drain: on PostgreSQL the rows are taken
  with ``FOR UPDATE SKIP LOCKED`` and stay locked until their mark commits (a dead dispatcher's
  connection drops and its locks with it); on SQLite, which has no row locks, a compare-and-set
  claim writes a lease (``dispatch_claimed_until``) first, and a dispatcher stops publishing a batch
  once half its lease is spent, so no other dispatcher can have reclaimed a row it still sends.

Dispatchers: a thread in every API process (``dispatch_in_api``, woken by each post that opened an
incident, polling for rows other processes left), and beat's ``aiops.redispatch`` job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, false, select, update

from agents.priorities import task_priority
from services.alerts.models import Alert
from services.config import Settings
from services.notify.service import kick
from services.storage.base import session_scope, utcnow, write_turn
from services.worker.queue import OBSERVE, enqueue

log = logging.getLogger(__name__)

_ALERTS = cast(Table, Alert.__table__)
_PENDING = (_ALERTS.c.dispatched == false()) & _ALERTS.c.incident_id.is_not(None)  # matches ix_alerts_undispatched
# PostgreSQL: the rows are the claim; SKIP LOCKED lets another dispatcher take the next rows meanwhile
_CLAIM_LOCKED = (select(_ALERTS.c.id, _ALERTS.c.incident_id, _ALERTS.c.severity).where(_PENDING)
                 .order_by(_ALERTS.c.id).limit(bindparam("n")).with_for_update(skip_locked=True))
# SQLite: one UPDATE (atomic under the single writer) moves the lease of rows nobody holds
_CLAIM_LEASE = (update(_ALERTS)
                .where(_ALERTS.c.id.in_(select(_ALERTS.c.id).where(
                    _PENDING, (_ALERTS.c.dispatch_claimed_until.is_(None))
                    | (_ALERTS.c.dispatch_claimed_until < bindparam("now")))
                    .order_by(_ALERTS.c.id).limit(bindparam("n")).scalar_subquery()))
                .values(dispatch_claimed_until=bindparam("until"))
                .returning(_ALERTS.c.id, _ALERTS.c.incident_id, _ALERTS.c.severity))
_MARK = (update(_ALERTS).where(_ALERTS.c.id.in_(bindparam("ids", expanding=True)))
         .values(dispatched=True, dispatch_claimed_until=None))
# SQLite: only while the lease is still ours (compare-and-set on the value we wrote)
_MARK_LEASED = (update(_ALERTS).where(_ALERTS.c.id.in_(bindparam("ids", expanding=True)),
                                      _ALERTS.c.dispatch_claimed_until == bindparam("until"))
                .values(dispatched=True, dispatch_claimed_until=None))
_RELEASE = (update(_ALERTS).where(_ALERTS.c.id.in_(bindparam("ids", expanding=True)),
                                  _ALERTS.c.dispatch_claimed_until == bindparam("until"))
            .values(dispatch_claimed_until=None))


class BrokerUnavailable(RuntimeError):
    """A publish failed: the rows not sent stay in the outbox for the next drain."""


@dataclass
class Drained:
    claimed: int = 0                                        # outbox rows taken by this drain
    sent: list[int] = field(default_factory=list)           # alert ids whose incident was published
    incidents: list[int] = field(default_factory=list)      # incidents handed to the observer
    error: str | None = None                                # the broker refused: the rest stays in the outbox
    out_of_time: bool = False                               # half the lease spent: the rest is for the next drain


def _publish(rows: Sequence[Any], *, deadline: float | None) -> Drained:
    """One observe task per incident of ``rows`` on one producer.

    Stops at the first failure or at ``deadline`` (monotonic): what is not sent stays in the outbox.
    """
    from services.incidents.flows import _chaos_delay
    from services.worker.celery_app import app

    by_incident: dict[int, tuple[list[int], int]] = {}
    for row in rows:
        ids, priority = by_incident.get(row.incident_id, ([], 9))
        ids.append(row.id)
        by_incident[row.incident_id] = (ids, min(priority, task_priority(row.severity)))
    out = Drained(claimed=len(rows))
    try:
        with app.producer_or_acquire() as producer:
            for incident_id, (ids, priority) in by_incident.items():
                if deadline is not None and time.monotonic() > deadline:
                    out.out_of_time = True
                    return out
                _chaos_delay("dispatch")  # resilience tests: a slow drain to kill in the middle
                enqueue(OBSERVE, incident_id, priority=priority, producer=producer)
                out.sent.extend(ids)
                out.incidents.append(incident_id)
    except Exception as exc:  # broker down or refusing: the rest stays in the outbox
        out.error = f"{type(exc).__name__}: {exc}"
    return out


def drain_once(settings: Settings, *, limit: int = 200) -> Drained:
    """Claim up to ``limit`` outbox rows, publish their incidents, mark what was sent."""
    url = settings.database_url
    with session_scope(url) as session:
        if session.get_bind().dialect.name == "postgresql":
            rows = session.execute(_CLAIM_LOCKED, {"n": limit}).all()
            if not rows:
                return Drained()
            out = _publish(rows, deadline=None)
            if out.sent:
                session.execute(_MARK, {"ids": out.sent})
            return out  # the commit marks the sent rows and unlocks the rest
    lease = settings.dispatch_lease_s
    now = utcnow()
    until = now + timedelta(seconds=lease)
    started = time.monotonic()
    # SQLite: queue for the writer's turn with the ingest (``write_turn``) instead of meeting its lock in the
    # busy handler, which sleeps in steps of up to 100 ms (the posts behind it waited as long)
    with write_turn(url), session_scope(url) as session:
        rows = session.execute(_CLAIM_LEASE, {"now": now, "until": until, "n": limit}).all()
    if not rows:
        return Drained()
    out = _publish(rows, deadline=started + lease / 2)
    done = set(out.sent)
    unsent = [row.id for row in rows if row.id not in done]
    with write_turn(url), session_scope(url) as session:
        if out.sent:
            session.execute(_MARK_LEASED, {"ids": out.sent, "until": until})
        if unsent:
            session.execute(_RELEASE, {"ids": unsent, "until": until})
    return out


def drain(settings: Settings, *, limit: int = 200) -> list[int]:
    """Drain the outbox until it is empty; returns the incidents sent. Raises BrokerUnavailable when
    a publish fails (after marking what was sent)."""
    incidents: list[int] = []
    while True:
        result = drain_once(settings, limit=limit)
        incidents += result.incidents
        if result.error is not None:
            raise BrokerUnavailable(result.error)
        if result.claimed < limit and not result.out_of_time:
            return incidents


class Dispatcher:
    """A thread draining the outbox: woken by the posts of this process, polling for everyone else's rows.

    It also queues the staged "opened" notifications of this process's posts (the webhook outbox's
    rows; its sweep is their backstop) and hands their resolved alerts to their incidents
    (``flows.note_resolved``: timeline note, stale approvals, the actor's re-check), so a post
    publishes nothing itself and never waits for the broker.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._deliveries: list[int] = []
        self._resolved: list[int] = []
        self._thread = threading.Thread(target=self._run, name="aiops-dispatcher", daemon=True)

    def start(self) -> Dispatcher:
        with _registry_lock:
            _running.setdefault(self.settings.database_url, []).append(self)
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        with _registry_lock:
            peers = _running.get(self.settings.database_url, [])
            if self in peers:
                peers.remove(self)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._kick()  # what was handed over and not yet queued (the sweep would send it later anyway)
        self._note_resolved()

    def wake(self, deliveries: list[int] | None = None, *, resolved: list[int] | None = None) -> None:
        if deliveries or resolved:
            with self._lock:
                self._deliveries += deliveries or []
                self._resolved += resolved or []
        self._wake.set()

    def _note_resolved(self) -> None:
        with self._lock:
            resolved, self._resolved = self._resolved, []
        note_resolved(self.settings, resolved)

    def _kick(self) -> None:
        with self._lock:
            deliveries, self._deliveries = self._deliveries, []
        if deliveries:
            kick(deliveries)

    def _run(self) -> None:
        delay, failing = self.settings.dispatch_poll_s, False
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._kick()
            self._note_resolved()
            try:
                drain(self.settings, limit=self.settings.dispatch_batch)
            except Exception as exc:  # broker or database down: back off, the rows wait in the outbox
                if not failing:
                    log.warning("dispatch outbox: %s; retrying with back-off", exc)
                failing, delay = True, min(30.0, max(1.0, delay * 2))
                continue
            if failing:
                log.info("dispatch outbox drained again")
            failing, delay = False, self.settings.dispatch_poll_s


_running: dict[str, list[Dispatcher]] = {}
_registry_lock = threading.Lock()


def note_resolved(settings: Settings, alert_ids: list[int]) -> None:
    """``flows.note_resolved`` for alerts whose resolution is already stored; a failure is logged, not raised:
    the actor reads the alerts' status from the store before it acts anyway."""
    if not alert_ids:
        return
    from services.incidents.flows import note_resolved as hand_over

    try:
        hand_over(alert_ids, settings=settings)
    except Exception:
        log.exception("could not hand resolved alerts %s to their incidents", alert_ids)


def wake(settings: Settings, *, deliveries: list[int] | None = None, resolved: list[int] | None = None) -> bool:
    """Tell this process's dispatcher for the database that rows are waiting; False when none runs here.

    Without one, staged notifications are queued and resolved alerts handed over right away (the
    outbox rows of alerts wait for beat's ``aiops.redispatch``).
    """
    with _registry_lock:
        dispatchers = list(_running.get(settings.database_url, []))
    if not dispatchers:
        if deliveries:
            kick(deliveries)
        note_resolved(settings, resolved or [])
        return False
    dispatchers[0].wake(deliveries, resolved=resolved)
    return True
