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
    started = time.time()
    sent = sent_at or started
    result = fn()
    from services.incidents import flows

    flows.record_task_run(incident_id, stage=stage, task_id=task.request.id or f"local-{started}",
                          queued_s=max(0.0, started - sent), run_s=time.time() - started,
                          worker=task.request.hostname, outcome=str(result))
    return result


@app.task(name="aiops.observe", bind=True, **RETRY)
def observe(self, alert_id: int, sent_at: float | None = None) -> int | None:
    from services.incidents import flows

    started = time.time()
    incident_id = flows.observe_alert(alert_id)
    if incident_id is not None:
        flows.record_task_run(incident_id, stage="observe", task_id=self.request.id or f"local-{started}",
                              queued_s=max(0.0, started - (sent_at or started)), run_s=time.time() - started,
                              worker=self.request.hostname)
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
    """Hand stored-but-undispatched alerts to the observer (the broker was down when they arrived)."""
    from datetime import timedelta

    from services.alerts.models import Alert
    from services.config import get_settings
    from services.storage.base import session_scope, utcnow

    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with session_scope(get_settings().database_url) as session:
        ids = session.scalars(select(Alert.id).where(Alert.dispatched.is_(False), Alert.status == "firing",
                                                     Alert.received_at <= cutoff)).all()
    for alert_id in ids:
        send(observe, alert_id, priority=4)
    return len(ids)
