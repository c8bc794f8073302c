"""Celery tasks: thin wrappers that time a flow step and let Celery retry transient failures.

This is the only module that imports the domains' flows for the workers; domain code enqueues by
name through ``services.worker.queue`` and never imports this module. Every task reads the
process's settings from the installed runtime (``services.worker.runtime.current``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from memory.upkeep import run_upkeep
from services.drift.service import reconcile_workspace, workspaces
from services.episodes.service import agent_memory
from services.incidents import flows
from services.incidents.scheduled import redispatch_stranded
from services.mitigation.service import train_model
from services.notify.scheduled import page_waiting_approvals
from services.notify.service import deliver, notify_event, sweep_outbox
from services.storage.base import engine_for
from services.worker import queue
from services.worker.celery_app import EPOCH_HEADER, app, is_stale
from services.worker.runtime import current, pinned

log = logging.getLogger(__name__)

RETRY = {"autoretry_for": (OperationalError, ConnectionError), "retry_backoff": True, "max_retries": 5}


class RuntimeTask(Task):
    """A task that runs start to end on one runtime, and not at all if its database epoch has passed.

    Embedded workers outlive a runtime switch (tests, the demo): a task queued before the switch
    (in the memory broker, or held for its countdown) is dropped, and one running across it keeps
    reading and writing the database it started on.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if is_stale(self.request.get(EPOCH_HEADER)):
            log.info("dropped %s %s: queued for the database this process used before", self.name, args)
            return None
        with pinned():
            return super().__call__(*args, **kwargs)


def _timed(task, incident_id: int, stage: str, fn: Callable[[], Any], sent_at: float | None) -> Any:
    """Run a stage and write its queue wait and run time on the timeline (nothing when it found no work)."""
    started = time.time()
    sent = sent_at or started
    result = fn()
    if result is None:
        return result
    flows.record_task_run(incident_id, stage=stage, task_id=task.request.id or f"local-{started}",
                          queued_s=max(0.0, started - sent), run_s=time.time() - started,
                          worker=task.request.hostname, outcome=str(result))
    return result


@app.task(base=RuntimeTask, name=queue.OBSERVE, bind=True, **RETRY)
def observe(self, incident_id: int, sent_at: float | None = None) -> int | None:
    _timed(self, incident_id, "observe", lambda: flows.observe_incident(incident_id), sent_at)
    return incident_id


@app.task(base=RuntimeTask, name=queue.DIAGNOSE, bind=True, **RETRY)
def diagnose(self, incident_id: int, sent_at: float | None = None) -> str:
    return _timed(self, incident_id, "diagnose", lambda: flows.advance(incident_id, "diagnose"), sent_at)


@app.task(base=RuntimeTask, name=queue.ACT, bind=True, **RETRY)
def act(self, incident_id: int, resume: dict[str, Any] | None = None, sent_at: float | None = None) -> str:
    return _timed(self, incident_id, "act", lambda: flows.advance(incident_id, "act", resume=resume), sent_at)


@app.task(base=RuntimeTask, name=queue.REDISPATCH)
def redispatch(older_than_s: float = 30.0, sent_at: float | None = None) -> int:
    return redispatch_stranded(current().settings, older_than_s=older_than_s)


@app.task(base=RuntimeTask, name=queue.NOTIFY, bind=True, **RETRY)
def notify(self, event: dict[str, Any] | None = None, delivery_ids: list[int] | None = None,
           sent_at: float | None = None) -> dict[int, str]:
    """Send outbox rows; each row schedules its own retry, so Celery retries only a database outage.

    ``event`` is the message format of releases before the outbox: it is staged, then sent.
    """
    settings = current().settings
    if event is not None:
        fields: dict[str, Any] = {k: event.get(k) for k in ("incident_id", "title", "kind", "message")}
        delivery_ids = [*(delivery_ids or []), *notify_event(settings, **fields, data=event.get("data") or {})]
    return deliver(settings, delivery_ids or [])


@app.task(base=RuntimeTask, name=queue.NOTIFY_SWEEP)
def notify_sweep(sent_at: float | None = None) -> int:
    """Re-queue outbox rows whose delivery task was lost, and page approvals that waited too long
    (beat, or the embedded sweeper, every ``webhook_sweep_interval_s``)."""
    settings = current().settings
    paged = page_waiting_approvals(settings)
    return sweep_outbox(settings) + len(paged)


@app.task(base=RuntimeTask, name=queue.CAUSAL_TRAIN, bind=True, acks_late=True)
def train_causal(self, data: str | None = None, synthetic: int = 0, quick: bool = False,
                 sent_at: float | None = None) -> dict[str, Any]:
    """Train/refute/promote on the ``causal`` queue; beat runs it nightly on the events in the database."""
    return train_model(current().settings, data=data, synthetic=synthetic, quick=quick)


@app.task(base=RuntimeTask, name=queue.MEMORY_UPKEEP)
def memory_upkeep(sent_at: float | None = None) -> dict[str, Any]:
    """Consolidate knowledge, expire stale entries, repair half-written episodes, re-embed after a model change."""
    settings = current().settings
    return run_upkeep(engine_for(settings.database_url), chroma_client=agent_memory(settings).chroma)


@app.task(base=RuntimeTask, name=queue.IAC_RECONCILE, bind=True, acks_late=True)
def reconcile_iac(self, workspace: str | None = None, sent_at: float | None = None) -> dict[str, Any]:
    """Reconcile one workspace (or every configured one) from its watermark."""
    settings = current().settings
    names = [workspace] if workspace else list(workspaces(settings))
    return {name: reconcile_workspace(settings, name) for name in names}
