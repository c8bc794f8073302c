"""Multi-step orchestration of one incident across the agents' queues.

Every function here is safe to run twice (a redelivered Celery task): the LangGraph checkpoint
says which node runs next, and a stage whose node is not next has already been done.
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
from services.alerts.models import Alert
from services.incidents.models import Incident
from services.incidents.service import add_event
from services.storage.base import session_scope, utcnow
from services.worker.runtime import get_runtime

log = logging.getLogger(__name__)


def _config(incident_id: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"incident-{incident_id}"}}


def _chaos_delay(stage: str) -> None:
    """Chaos knob for resilience tests: ``AIOPS_CHAOS_STAGE=diagnose AIOPS_CHAOS_DELAY_S=30`` stalls that stage."""
    if os.environ.get("AIOPS_CHAOS_STAGE") == stage:
        time.sleep(float(os.environ.get("AIOPS_CHAOS_DELAY_S", "0")))


def incident_priority(incident_id: int) -> int:
    runtime = get_runtime()
    with session_scope(runtime.settings.database_url) as session:
        incident = session.get(Incident, incident_id)
        impacted = len(session.scalars(select(Alert.id).where(Alert.incident_id == incident_id)).all())
        age = (utcnow() - incident.opened_at).total_seconds()
        return task_priority(incident.severity, impacted=impacted, age_s=age)


def _alert_view(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "name": alert.name, "severity": alert.severity, "service": alert.service,
            "node": alert.node, "cluster": alert.cluster, "labels": dict(alert.labels), "summary": alert.summary}


def observe_incident(incident_id: int) -> str | None:
    """Run the observer on a new incident and hand over to the diagnoser (a repeat finds the step done).

    Returns ran or skipped, or None when the incident has no alert to observe.
    """
    runtime = get_runtime()
    with session_scope(runtime.settings.database_url) as session:
        first = session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id).limit(1)).first()
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
        from services.worker import tasks

        tasks.send(tasks.diagnose, incident_id, priority=incident_priority(incident_id))
    return outcome


def advance(incident_id: int, stage: str, *, resume: dict[str, Any] | None = None) -> str:
    """Run one stage of the incident graph; returns what happened (ran, skipped, waiting, done)."""
    runtime = get_runtime()
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
        from services.worker import tasks

        tasks.send(tasks.act, incident_id, priority=incident_priority(incident_id))
    if snapshot.interrupts:
        return "waiting"
    return "done" if not snapshot.next else "ran"


def record_task_run(incident_id: int, *, stage: str, task_id: str, queued_s: float, run_s: float,
                    worker: str | None = None, outcome: str = "ran") -> None:
    runtime = get_runtime()
    with session_scope(runtime.settings.database_url) as session:
        add_event(session, incident_id, kind="task", actor=stage, dedup_key=f"task:{task_id}",
                  message=f"{stage} task {outcome} in {run_s:.2f}s after {queued_s:.2f}s in queue",
                  data={"stage": stage, "queued_s": round(queued_s, 3), "run_s": round(run_s, 3),
                        "worker": worker or "local", "pid": os.getpid(), "outcome": outcome})
