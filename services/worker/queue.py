"""Enqueue work by task name: the one way domain code hands a step to a queue.

Domain modules import this module, never ``services.worker.tasks``; the task module imports the
domains. That keeps the import graph one-way and lets a process enqueue work it cannot run
(the API enqueues ``act`` without loading the agents).
"""

from __future__ import annotations

import time
from typing import Any

from services.worker.celery_app import EPOCH_HEADER, app, epoch_stamp

OBSERVE = "aiops.observe"
DIAGNOSE = "aiops.diagnose"
ACT = "aiops.act"
REDISPATCH = "aiops.redispatch"
NOTIFY = "aiops.notify"
NOTIFY_SWEEP = "aiops.notify.sweep"
CAUSAL_TRAIN = "aiops.causal.train"
MEMORY_UPKEEP = "aiops.memory.upkeep"
IAC_RECONCILE = "aiops.iac.reconcile"

TASK_NAMES = (OBSERVE, DIAGNOSE, ACT, REDISPATCH, NOTIFY, NOTIFY_SWEEP, CAUSAL_TRAIN, MEMORY_UPKEEP, IAC_RECONCILE)


def enqueue(name: str, *args: Any, priority: int = 5, countdown: float | None = None, producer: Any = None,
            **kwargs: Any) -> str:
    """Send a task by name with its send time (the worker reports queue wait); returns the task id.

    ``countdown`` delays the task (re-checks, back-off) without holding a worker thread meanwhile;
    ``producer`` reuses one broker producer for a batch of sends (the dispatch outbox).
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}")
    # ignore_result: nothing reads these tasks' results, and without it every send also subscribes to the
    # result backend (one more Redis round trip per publish, retried for minutes when Redis hangs)
    result = app.send_task(name, args=list(args), kwargs={**kwargs, "sent_at": time.time()}, priority=priority,
                           countdown=countdown, producer=producer, ignore_result=True,
                           headers={EPOCH_HEADER: epoch_stamp()})
    return result.id
