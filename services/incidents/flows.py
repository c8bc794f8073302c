"""Multi-step orchestration of incidents across the agents' queues.

Every function here is called from more than one place (API, Slack, the demo, Celery tasks) and is
safe to run twice (a redelivered task): the LangGraph checkpoint says which node runs next, and a
stage whose node is not next has already been done. Errors are domain errors (``services.errors``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from langgraph.types import Command
from sqlalchemy import select

from agents.graph import STAGE_FIRST_NODE
from agents.priorities import task_priority
from services.actions.models import Approval
from services.alerts.models import Alert
from services.audit.service import record
from services.config import Settings
from services.errors import Conflict, NotFound
from services.incidents.models import Incident
from services.incidents.service import add_event, approval_dict
from services.notify.service import notify_event
from services.storage.base import session_scope, utcnow
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
        impacted = len(session.scalars(select(Alert.id).where(Alert.incident_id == incident_id)).all())
        age = (utcnow() - incident.opened_at).total_seconds()
        return task_priority(incident.severity, impacted=impacted, age_s=age)


def dispatch(opened: list[Incident], *, settings: Settings) -> list[int]:
    """Hand new incidents to the observer; a broker failure leaves their alerts for the redispatch job.

    Returns the ids that could not be enqueued (their alerts are marked undispatched).
    """
    failed = []
    for incident in opened:
        try:
            enqueue(OBSERVE, incident.id, priority=task_priority(incident.severity))
        except Exception:  # broker down: the alert is stored, beat's redispatch will retry
            log.exception("could not enqueue incident %s; its alerts stay stored for redispatch", incident.id)
            failed.append(incident.id)
    if failed:
        with session_scope(settings.database_url) as session:
            for alert in session.scalars(select(Alert).where(Alert.incident_id.in_(failed))):
                alert.dispatched = False
    return failed


def notify_opened(opened: list[Incident], *, settings: Settings) -> None:
    """Tell the channels about new incidents; a notification never fails an ingest that is stored."""
    for incident in opened:
        try:
            notify_event(settings, incident_id=incident.id, title=incident.title, kind="opened",
                         message=incident.summary or incident.title, data={})
        except Exception:
            log.exception("could not queue the notification for incident %s", incident.id)


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
        claimed = session.execute(
            Approval.__table__.update()
            .where(Approval.id == approval_id, Approval.status == "pending")
            .values(status=status, decided_by=user, decided_at=utcnow(), comment=comment)
        ).rowcount
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
            "node": alert.node, "cluster": alert.cluster, "labels": dict(alert.labels), "summary": alert.summary}


def observe_incident(incident_id: int) -> str | None:
    """Run the observer on a new incident and hand over to the diagnoser (a repeat finds the step done).

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
    config = _config(incident_id)
    snapshot = runtime.graph.get_state(config)
    outcome = "skipped"
    if not snapshot.values:
        _chaos_delay("observe")
        runtime.graph.invoke({"incident_id": incident_id, "alert": first_view}, config)
        snapshot, outcome = runtime.graph.get_state(config), "ran"
    if STAGE_FIRST_NODE["diagnose"] in snapshot.next:
        enqueue(DIAGNOSE, incident_id,
                priority=incident_priority(incident_id, database_url=runtime.settings.database_url))
    return outcome


def advance(incident_id: int, stage: str, *, resume: dict[str, Any] | None = None) -> str:
    """Run one stage of the incident graph; returns what happened (ran, skipped, waiting, done)."""
    runtime = current()
    graph, config = runtime.graph, _config(incident_id)
    snapshot = graph.get_state(config)
    if resume is not None:
        if "approve" not in snapshot.next:
            return "skipped"
        graph.invoke(Command(resume=resume), config)
    elif STAGE_FIRST_NODE[stage] not in snapshot.next:
        log.info("incident %s: stage %s already done (next=%s)", incident_id, stage, snapshot.next)
        return "skipped"
    else:
        _chaos_delay(stage)
        graph.invoke(None, config)
    snapshot = graph.get_state(config)
    while stage == "act" and snapshot.next == ("plan",):  # verify failed: the actor tries the next hypothesis
        graph.invoke(None, config)
        snapshot = graph.get_state(config)
    if stage == "diagnose" and STAGE_FIRST_NODE["act"] in snapshot.next:
        enqueue(ACT, incident_id, priority=incident_priority(incident_id, database_url=runtime.settings.database_url))
    if snapshot.interrupts:
        return "waiting"
    return "done" if not snapshot.next else "ran"


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
