"""Celery tasks: thin wrappers that time a flow step and let Celery retry transient failures."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from services.worker.celery_app import app

RETRY = {"autoretry_for": (OperationalError, ConnectionError), "retry_backoff": True, "max_retries": 5}


def send(task, *args: Any, priority: int = 5, **kwargs: Any) -> None:
    """Enqueue with the send time, so the worker can report how long the task waited in its queue."""
    task.apply_async(args=list(args), kwargs={**kwargs, "sent_at": time.time()}, priority=priority)


def _timed(task, incident_id: int, stage: str, fn, sent_at: float | None) -> Any:
    """Run a stage and write its queue wait and run time on the timeline (nothing when it found no work)."""
    started = time.time()
    sent = sent_at or started
    result = fn()
    if result is None:
        return result
    from services.incidents import flows

    flows.record_task_run(incident_id, stage=stage, task_id=task.request.id or f"local-{started}",
                          queued_s=max(0.0, started - sent), run_s=time.time() - started,
                          worker=task.request.hostname, outcome=str(result))
    return result


@app.task(name="aiops.observe", bind=True, **RETRY)
def observe(self, incident_id: int, sent_at: float | None = None) -> int | None:
    from services.incidents import flows

    _timed(self, incident_id, "observe", lambda: flows.observe_incident(incident_id), sent_at)
    return incident_id


@app.task(name="aiops.diagnose", bind=True, **RETRY)
def diagnose(self, incident_id: int, sent_at: float | None = None) -> str:
    from services.incidents import flows

    return _timed(self, incident_id, "diagnose", lambda: flows.advance(incident_id, "diagnose"), sent_at)


@app.task(name="aiops.act", bind=True, **RETRY)
def act(self, incident_id: int, resume: dict[str, Any] | None = None, sent_at: float | None = None) -> str:
    from services.incidents import flows

    return _timed(self, incident_id, "act", lambda: flows.advance(incident_id, "act", resume=resume), sent_at)


@app.task(name="aiops.redispatch")
def redispatch(older_than_s: float = 30.0, sent_at: float | None = None) -> int:
    """Re-send stranded work: alerts stored while the broker was down, incidents whose graph never started."""
    from datetime import timedelta

    from services.alerts.models import Alert
    from services.config import get_settings
    from services.incidents.models import Incident
    from services.incidents.service import attach_alert
    from services.storage.base import session_scope, utcnow
    from services.worker.runtime import get_runtime

    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with session_scope(settings.database_url) as session:
        incident_ids = set()
        for alert in session.scalars(select(Alert).where(Alert.dispatched.is_(False), Alert.status == "firing",
                                                         Alert.received_at <= cutoff)):
            incident, _ = attach_alert(session, alert, window_s=settings.incident_group_window_s, priority=5)
            alert.dispatched = True
            incident_ids.add(incident.id)
        stale = session.scalars(select(Incident.id).where(Incident.status == "open", Incident.opened_at <= cutoff)).all()
    graph = get_runtime().graph
    for incident_id in stale:  # opened but the observer never ran (lost message)
        if not graph.get_state({"configurable": {"thread_id": f"incident-{incident_id}"}}).values:
            incident_ids.add(incident_id)
    for incident_id in sorted(incident_ids):
        send(observe, incident_id, priority=4)
    return len(incident_ids)


@app.task(name="aiops.notify", bind=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=8)
def notify(self, event: dict[str, Any], sent_at: float | None = None) -> dict[str, int]:
    from services.config import get_settings
    from services.notify.service import deliver

    settings = get_settings()
    return deliver(event, webhook_urls=settings.webhook_urls, webhook_secret=settings.webhook_secret,
                   slack_webhook_url=settings.slack_webhook_url, console_url=settings.public_url)


@app.task(name="aiops.causal.train", bind=True, acks_late=True)
def train_causal(self, data: str | None = None, synthetic: int = 0, quick: bool = False,
                 sent_at: float | None = None) -> dict[str, Any]:
    """Train/refute/promote on the ``causal`` queue; beat runs it nightly on the events in the database."""
    from services.config import get_settings
    from services.mitigation.service import train_model

    return train_model(get_settings(), data=data, synthetic=synthetic, quick=quick)


@app.task(name="aiops.memory.upkeep")
def memory_upkeep(sent_at: float | None = None) -> dict[str, Any]:
    """Consolidate knowledge, expire stale entries, repair half-written episodes, re-embed after a model change."""
    from memory.upkeep import run_upkeep
    from services.config import get_settings
    from services.episodes.service import agent_memory
    from services.storage.base import engine_for

    settings = get_settings()
    memory = agent_memory(settings)
    return run_upkeep(engine_for(settings.database_url), chroma_client=memory.chroma)


@app.task(name="aiops.iac.reconcile", bind=True, acks_late=True)
def reconcile_iac(self, workspace: str | None = None, sent_at: float | None = None) -> dict[str, Any]:
    """Reconcile one workspace (or every configured one) from its watermark."""
    from services.config import get_settings
    from services.drift.service import reconcile_workspace, workspaces

    settings = get_settings()
    names = [workspace] if workspace else list(workspaces(settings))
    return {name: reconcile_workspace(settings, name) for name in names}
