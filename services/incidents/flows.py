"""Multi-step orchestration of incidents across the agents' queues.

Every function here is called from more than one place (API, Slack, the demo, Celery tasks) and is
safe to run twice (a redelivered task): the LangGraph checkpoint says which node runs next, and a
stage whose node is not next has already been done. Errors are domain errors (``services.errors``).
After every step, ``hand_over`` enqueues whichever stage owns the node the graph paused before; a
verification re-check is a delayed task, so no worker thread ever waits for a target to recover.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, cast

from langgraph.types import Command
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from agents.graph import STAGE_OF_NODE
from agents.priorities import task_priority
from services.actions.models import Approval
from services.alerts.models import Alert
from services.audit.service import record
from services.config import Settings
from services.errors import Conflict, NotFound
from services.incidents.models import Incident
from services.incidents.service import add_event, approval_dict, close_pending_approvals
from services.notify.service import stage_event
from services.storage.base import rows_matched, session_scope, utcnow
from services.worker.queue import ACT, DIAGNOSE, OBSERVE, enqueue
from services.worker.runtime import current

log = logging.getLogger(__name__)


class AlreadyDecided(Conflict):
    """An approval can be decided once; a second click (console, Slack, autopilot) is refused."""


def _config(incident_id: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"incident-{incident_id}"}}


def _chaos_delay(stage: str) -> None:
    """Chaos knob for resilience tests: ``AIOPS_CHAOS_STAGE=diagnose AIOPS_CHAOS_DELAY_S=30`` stalls that stage."""
    if os.environ.get("AIOPS_CHAOS_STAGE") == stage:
        time.sleep(float(os.environ.get("AIOPS_CHAOS_DELAY_S", "0")))


def incident_priority(incident_id: int, *, database_url: str) -> int:
    with session_scope(database_url) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None, "a task is enqueued only for an incident that exists"
        impacted = len(session.scalars(select(Alert.id).where(Alert.incident_id == incident_id)).all())
        age = (utcnow() - incident.opened_at).total_seconds()
        return task_priority(incident.severity, impacted=impacted, age_s=age)


def stage_opened(session: Session, opened: list[Any], *, settings: Settings) -> list[int]:
    """Stage the "opened" notifications of new incidents (``IncidentRef``s or ``Incident``s) in the ingest's
    transaction (they commit with the incidents); `kick` the returned outbox ids after the commit."""
    return [delivery for incident in opened
            for delivery in stage_event(session, settings, incident_id=incident.id, title=incident.title,
                                        kind="opened", message=incident.summary or incident.title, data={})]


def decide(settings: Settings, approval_id: int, *, approved: bool, user: str, comment: str = "") -> dict[str, Any]:
    """Record an operator's decision once and resume the paused actor with it.

    The claim is a compare-and-set on the approval's status, so two deciders (console and Slack,
    two API processes) cannot both resume the actor.
    """
    status = "approved" if approved else "rejected"
    with session_scope(settings.database_url) as session:
        approval = session.get(Approval, approval_id)
        if approval is None:
            raise NotFound(f"approval {approval_id} does not exist")
        claimed = rows_matched(session,
            cast(Table, Approval.__table__).update()
            .where(Approval.id == approval_id, Approval.status == "pending")
            .values(status=status, decided_by=user, decided_at=utcnow(), comment=comment))
        session.refresh(approval)
        if claimed != 1:
            raise AlreadyDecided(f"approval {approval_id} was already {approval.status} by {approval.decided_by}")
        record(session, actor=user, action=f"approval.{status}", subject=f"approval:{approval_id}",
               data={"incident_id": approval.incident_id, "action": approval.action_kind, "target": approval.target})
        incident_id, result = approval.incident_id, approval_dict(approval)
    enqueue(ACT, incident_id, priority=1, resume={"approved": approved, "by": user, "comment": comment})
    return result


def _alert_view(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "name": alert.name, "severity": alert.severity, "service": alert.service,
            "node": alert.node, "cluster": alert.cluster, "labels": dict(alert.labels), "summary": alert.summary,
            # the case splits its look at the alert's start (else it guesses the last third of the look)
            "starts_at": alert.starts_at.isoformat() if alert.starts_at else None}


STAGE_TASK = {"observe": OBSERVE, "diagnose": DIAGNOSE, "act": ACT}
# a re-check arriving this much before its due time is a duplicate of the chain (a redelivery): skip it
EARLY_TOLERANCE_S = 1.0


def hand_over(incident_id: int, snapshot: Any, *, database_url: str) -> str | None:
    """Enqueue the stage that runs the node the graph paused before; returns the task name or None.

    A pending verification is a delayed task (``countdown`` until the next probe is due): no worker
    thread waits for a target to recover. Nothing is enqueued while an approval is pending or when
    the graph has ended.
    """
    if snapshot.interrupts or not snapshot.next:
        return None
    node = snapshot.next[0]
    stage = STAGE_OF_NODE.get(node)
    if stage is None:
        return None
    countdown = None
    if node == "verify":
        due = (snapshot.values.get("verifying") or {}).get("next_check_at")
        countdown = max(0.0, float(due) - time.time()) if due else None
    enqueue(STAGE_TASK[stage], incident_id, priority=incident_priority(incident_id, database_url=database_url),
            countdown=countdown or None)
    return STAGE_TASK[stage]


def observe_incident(incident_id: int) -> str | None:
    """Run the observer (first look or a wider one the supervisor asked for) and hand over to the diagnoser.

    Returns ran or skipped, or None when the incident has no alert to observe.
    """
    runtime = current()
    with session_scope(runtime.settings.database_url) as session:
        first = session.scalars(select(Alert).where(Alert.incident_id == incident_id)
                                .order_by(Alert.id).limit(1)).first()
        if first is None:
            log.warning("incident %s has no alert; nothing to observe", incident_id)
            return None
        first_view = _alert_view(first)
    graph, config = runtime.graph, _config(incident_id)
    snapshot = graph.get_state(config)
    if not snapshot.values:  # the graph starts paused before its first node
        graph.invoke({"incident_id": incident_id, "alert": first_view}, config)
        snapshot = graph.get_state(config)
    outcome = "skipped"
    if "observe" in snapshot.next:
        _chaos_delay("observe")
        graph.invoke(None, config)
        snapshot, outcome = graph.get_state(config), "ran"
    if "diagnose" in snapshot.next:  # also after a skip: a lost diagnose message is sent again
        hand_over(incident_id, snapshot, database_url=runtime.settings.database_url)
    return outcome


def advance(incident_id: int, stage: str, *, resume: dict[str, Any] | None = None) -> str:
    """Run one node run of ``stage`` and hand over to the next stage; returns ran, skipped, waiting or done.

    One act task runs at most up to the next pause: after an action, that is before the first
    verification probe; each probe is its own (delayed) task.
    """
    runtime = current()
    graph, config = runtime.graph, _config(incident_id)
    snapshot = graph.get_state(config)
    if resume is not None:
        if "approve" not in snapshot.next:
            return "skipped"
        graph.invoke(Command(resume=resume), config)
    elif not any(STAGE_OF_NODE.get(node) == stage for node in snapshot.next):
        log.info("incident %s: stage %s already done (next=%s)", incident_id, stage, snapshot.next)
        return "skipped"
    else:
        due = (snapshot.values.get("verifying") or {}).get("next_check_at")
        if snapshot.next == ("verify",) and due and time.time() < float(due) - EARLY_TOLERANCE_S:
            log.info("incident %s: re-check due in %.1fs; this delivery is a duplicate", incident_id, due - time.time())
            return "skipped"
        _chaos_delay(stage)
        graph.invoke(None, config)
    snapshot = graph.get_state(config)
    hand_over(incident_id, snapshot, database_url=runtime.settings.database_url)
    if snapshot.interrupts:
        return "waiting"
    return "done" if not snapshot.next else "ran"


def note_resolved(alert_ids: list[int], *, settings: Settings) -> list[int]:
    """The source says these alerts are over: timeline them; when an incident has no firing alert left,
    mark its pending approvals stale and hand the actor a re-check before anything executes.

    Returns the incidents whose approvals went stale. Incidents not waiting for approval learn it
    when the actor next plans (``source_status`` in the store), which probes before acting.
    """
    if not alert_ids:
        return []
    stale: dict[int, list[int]] = {}
    with session_scope(settings.database_url) as session:
        alerts = session.scalars(select(Alert).where(Alert.id.in_(alert_ids), Alert.incident_id.is_not(None))).all()
        for alert in alerts:
            assert alert.incident_id is not None, "the query selects attached alerts only"
            ended = alert.ends_at.isoformat() if alert.ends_at else "an unknown time"
            add_event(session, alert.incident_id, kind="alert_resolved", actor="source",
                      dedup_key=f"alert_resolved:{alert.id}:{ended}",
                      message=f"alert {alert.name} resolved at the source (ended {ended})",
                      data={"alert_id": alert.id, "ends_at": alert.ends_at.isoformat() if alert.ends_at else None})
        for incident_id in sorted({a.incident_id for a in alerts if a.incident_id is not None}):
            firing = session.scalar(select(func.count(Alert.id)).where(Alert.incident_id == incident_id,
                                                                       Alert.status == "firing"))
            if firing:
                continue
            for approval_id in close_pending_approvals(
                    session, incident_id, status="stale", by="source",
                    comment="every alert of the incident resolved before a decision"):
                stale.setdefault(incident_id, []).append(approval_id)
                record(session, actor="source", action="approval.stale", subject=f"approval:{approval_id}",
                       data={"incident_id": incident_id})
    for incident_id, approvals in stale.items():
        enqueue(ACT, incident_id, priority=1, resume={
            "approved": False, "stale": True, "by": "source", "approvals": approvals,
            "comment": "every alert of the incident resolved at the source"})
    return sorted(stale)


def resume_stalled(incident_id: int) -> bool:
    """Send the stage the graph paused before again (a lost re-check); False when it waits for a person or ended."""
    runtime = current()
    snapshot = runtime.graph.get_state(_config(incident_id))
    return hand_over(incident_id, snapshot, database_url=runtime.settings.database_url) is not None


def graph_started(incident_id: int) -> bool:
    """Whether the incident's graph has a checkpoint (the observer ran at least once)."""
    return bool(current().graph.get_state(_config(incident_id)).values)


def record_task_run(incident_id: int, *, stage: str, task_id: str, queued_s: float, run_s: float,
                    worker: str | None = None, outcome: str = "ran") -> None:
    with session_scope(current().settings.database_url) as session:
        add_event(session, incident_id, kind="task", actor=stage, dedup_key=f"task:{task_id}",
                  message=f"{stage} task {outcome} in {run_s:.2f}s after {queued_s:.2f}s in queue",
                  data={"stage": stage, "queued_s": round(queued_s, 3), "run_s": round(run_s, 3),
                        "worker": worker or "local", "pid": os.getpid(), "outcome": outcome})
