"""Embedded mode: Celery workers as threads of the current process, on the in-memory broker.

Used by ``aiops demo`` and ``aiops api`` when no broker server is configured. It is Celery's own
worker (same tasks, queues, priorities and retries), only hosted in a thread instead of a process.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.worker import WorkController

from services.worker.celery_app import QUEUES

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(self, app: Celery, *, queues: tuple[str, ...] = QUEUES, concurrency: int = 4) -> None:
        self.app = app
        self.controller = WorkController(
            app=app, pool="threads", concurrency=concurrency, queues=list(queues), hostname=f"embedded@{id(self)}",
            without_heartbeat=True, without_mingle=True, without_gossip=True, loglevel="WARNING",
        )
        self.thread = threading.Thread(target=self.controller.start, name="aiops-embedded-worker", daemon=True)

    def start(self) -> EmbeddedWorker:
        self.thread.start()
        log.info("embedded worker started on queues %s", ", ".join(QUEUES))
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop taking tasks; in-flight ones get ``timeout`` seconds (their checkpoints make them resumable)."""
        stopper = threading.Thread(target=self.controller.stop, kwargs={"in_sighandler": False}, daemon=True)
        stopper.start()
        stopper.join(timeout)


_started: EmbeddedWorker | None = None
_lock = threading.Lock()


def ensure_embedded_worker(app: Celery) -> EmbeddedWorker:
    """One embedded worker per process, whoever asks first (API lifespan, demo, tests)."""
    global _started
    with _lock:
        if _started is None:
            _started = EmbeddedWorker(app, concurrency=8).start()
        return _started


def drop_in_process_queues() -> int:
    """Empty the in-memory broker's queues of this process; returns how many messages were dropped.

    The memory transport keeps its queues in a class attribute, so they outlive the app and runtime
    that filled them; a process that switches database must not hand the old tasks to the new one.
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


def stop_embedded_worker(*, timeout: float = 10.0) -> None:
    global _started
    with _lock:
        if _started is not None:
            _started.stop(timeout=timeout)
            _started = None
