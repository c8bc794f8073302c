"""Embedded mode: Celery workers as threads of the current process, on the in-memory broker.

Used by ``aiops demo`` and ``aiops api`` when no broker server is configured. It is Celery's own
worker (same tasks, queues, priorities and retries), only hosted in a thread instead of a process.
There is no beat in embedded mode, so the worker brings the one periodic job that must not wait for
a restart: the outbox sweep (deliveries whose task was lost, approvals waiting long enough to page).
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.worker import WorkController

from services.worker.celery_app import QUEUES

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(self, app: Celery, *, queues: tuple[str, ...] = QUEUES, concurrency: int = 4,
                 sweep: bool = True, sweep_interval_s: float | None = None) -> None:
        self.app = app
        self.sweep, self.sweep_interval_s = sweep, sweep_interval_s
        self._stopping = threading.Event()
        self.sweeper = threading.Thread(target=self._sweep_forever, name="aiops-embedded-sweeper", daemon=True)
        self.controller = WorkController(
            app=app, pool="threads", concurrency=concurrency, queues=list(queues), hostname=f"embedded@{id(self)}",
            without_heartbeat=True, without_mingle=True, without_gossip=True, loglevel="WARNING",
        )
        self.thread = threading.Thread(target=self.controller.start, name="aiops-embedded-worker", daemon=True)

    def start(self) -> EmbeddedWorker:
        self.thread.start()
        if self.sweep:
            self.sweeper.start()
        log.info("embedded worker started on queues %s", ", ".join(QUEUES))
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop taking tasks; in-flight ones get ``timeout`` seconds (their checkpoints make them resumable)."""
        self._stopping.set()
        stopper = threading.Thread(target=self.controller.stop, kwargs={"in_sighandler": False}, daemon=True)
        stopper.start()
        stopper.join(timeout)

    def _sweep_forever(self) -> None:
        """Queue the outbox sweep every interval, as beat does in distributed mode.

        Without a fixed interval it is read from the installed runtime at every turn, so a process
        that installs new settings (the demo, tests) sweeps at the pace they ask for.
        """
        from services.worker.queue import NOTIFY_SWEEP, enqueue
        from services.worker.runtime import current

        while not self._stopping.wait(self.sweep_interval_s or current().settings.webhook_sweep_interval_s):
            try:
                enqueue(NOTIFY_SWEEP, priority=4)
            except Exception:  # the in-memory broker refusing is a bug worth a log line, not a dead thread
                log.warning("could not queue the outbox sweep", exc_info=True)


_started: EmbeddedWorker | None = None
_lock = threading.Lock()


def ensure_embedded_worker(app: Celery, *, sweep_interval_s: float | None = None) -> EmbeddedWorker:
    """One embedded worker per process, whoever asks first (API lifespan, demo, tests).

    ``sweep_interval_s`` defaults to the runtime's ``webhook_sweep_interval_s`` (read at each sweep).
    """
    global _started
    with _lock:
        if _started is None:
            _started = EmbeddedWorker(app, concurrency=8, sweep_interval_s=sweep_interval_s).start()
        return _started


def stop_embedded_worker(*, timeout: float = 10.0) -> None:
    global _started
    with _lock:
        if _started is not None:
            _started.stop(timeout=timeout)
            _started = None
