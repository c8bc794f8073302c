"""The Celery application: one queue per agent and job, priorities, late acks, a beat schedule.

The same task code runs embedded (``memory://`` broker, worker threads inside ``aiops demo``) and
distributed (Redis broker, ``aiops worker --queues ...`` processes, ``aiops beat``).
"""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from kombu import Queue

from services.config import Settings, get_settings

log = logging.getLogger(__name__)

QUEUES = ("observe", "diagnose", "act", "causal", "iac", "notify")
# which worker pool serves which queues in docker-compose and `aiops worker` defaults
QUEUE_GROUPS = {"agents": ("observe", "diagnose", "act"), "jobs": ("causal", "iac"), "notify": ("notify",)}

ROUTES = {
    "aiops.observe": {"queue": "observe"},
    "aiops.diagnose": {"queue": "diagnose"},
    "aiops.act": {"queue": "act"},
    "aiops.redispatch": {"queue": "observe"},
    "aiops.notify": {"queue": "notify"},
    "aiops.notify.*": {"queue": "notify"},
    "aiops.causal.*": {"queue": "causal"},
    "aiops.iac.*": {"queue": "iac"},
    "aiops.memory.*": {"queue": "causal"},
}

BEAT_SCHEDULE = {
    "redispatch-stranded-alerts": {"task": "aiops.redispatch", "schedule": 30.0},
    "causal-retrain-nightly": {"task": "aiops.causal.train", "schedule": 24 * 3600.0},
    "memory-upkeep-hourly": {"task": "aiops.memory.upkeep", "schedule": 3600.0},
    "iac-reconcile": {"task": "aiops.iac.reconcile", "schedule": 300.0},
    "webhook-outbox-sweep": {"task": "aiops.notify.sweep", "schedule": 15.0},
}


REDIS_SOCKET_TIMEOUT_S = 5.0  # above kombu's 1 s BRPOP poll, far below any sender's retry timeout


def _transport_options(settings: Settings) -> dict:
    """Redis gets priority steps (0 = served first) and the redelivery timeout; other transports take none."""
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return {}
    options = {
        # a hung Redis (stopped, half-open connection) must fail a publish, not hang the caller forever:
        # the dispatcher then backs off and the rows wait in the outbox; /readyz and /metrics answer
        "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_S,
        "priority_steps": list(range(10)),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": settings.broker_visibility_timeout,
        # sweep for tasks of dead workers often enough for the visibility timeout to mean something
        "unacked_restore_interval": max(1, min(10, settings.broker_visibility_timeout // 4)),
        "unacked_restore_throttle": 1 if settings.broker_visibility_timeout < 120 else 10,
    }
    if settings.broker_key_prefix:
        options["global_keyprefix"] = settings.broker_key_prefix
    return options


def create_celery(settings: Settings) -> Celery:
    app = Celery("aiops", broker=settings.broker_url, backend=settings.result_backend, include=["services.worker.tasks"])
    app.conf.update(
        task_queues=[Queue(name, routing_key=name, queue_arguments={"x-max-priority": 10}) for name in QUEUES],
        task_default_queue="observe",
        task_routes=ROUTES,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_default_priority=5,
        task_track_started=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings),
        redis_socket_timeout=REDIS_SOCKET_TIMEOUT_S,  # the result backend's client, same reason
        redis_socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
        worker_hijack_root_logger=False,
        beat_schedule={**BEAT_SCHEDULE,
                       "iac-reconcile": {**BEAT_SCHEDULE["iac-reconcile"], "schedule": settings.iac_reconcile_interval_s},
                       "webhook-outbox-sweep": {**BEAT_SCHEDULE["webhook-outbox-sweep"],
                                                "schedule": settings.webhook_sweep_interval_s}},
        timezone="UTC",
    )
    return app


app = create_celery(get_settings())
app.set_default()


# The in-process database epoch: bumped when this process switches database (tests, the demo). A task
# queued in this process under an older epoch (waiting in the in-memory queue or, with a countdown, in
# the worker's timer) belongs to the old database and must not run against the new one. Both outlive
# the runtime, as the in-memory queues do.
EPOCH_HEADER = "aiops_epoch"
_epoch = 0
_epoch_database: str | None = None
_epoch_lock = threading.Lock()


def epoch_stamp() -> str:
    """This process and its database epoch, for a task's headers (``enqueue`` adds it)."""
    return f"{os.getpid()}:{_epoch}"


def is_stale(stamp: str | None) -> bool:
    """True for a task queued by this very process under an earlier database epoch.

    Tasks from other processes, or without a stamp (older releases), are never stale: a worker
    cannot judge another process's database, and dropping work there would lose it.
    """
    if not stamp or ":" not in stamp:
        return False
    pid, _, epoch = stamp.partition(":")
    return pid == str(os.getpid()) and epoch != str(_epoch)


def use_database(database_url: str) -> None:
    """Record the database this process's tasks belong to; a switch starts a new epoch and empties
    the in-memory queues (the first database of the process is no switch)."""
    global _epoch, _epoch_database
    with _epoch_lock:
        switched = _epoch_database not in (None, database_url)
        _epoch_database = database_url
        if switched:
            _epoch += 1
    if switched:
        drop_in_process_queues()


def drop_in_process_queues() -> int:
    """Empty the in-memory broker's queues of this process; returns how many messages were dropped.

    The memory transport keeps its queues in a class attribute, so they outlive the app and runtime
    that filled them; a process that switches database must not hand the old tasks to the new one.
    Tasks already reserved by a worker (a countdown) are caught by their epoch stamp instead.
    """
    from kombu.transport import memory

    dropped = 0
    for queue in list(memory.Channel.queues.values()):
        while not queue.empty():
            queue.get_nowait()
            dropped += 1
    if dropped:
        log.info("dropped %d queued in-process task(s) of the previous runtime", dropped)
    return dropped
