"""A hung Redis (process stopped: the port still accepts connections, nothing ever answers) must not hang
the API: publishes fail after the socket timeout, ingest answers 202 without touching the broker (new
incidents wait in the dispatch outbox, resolved alerts are handed over by the dispatcher), /readyz says
degraded, and once Redis answers again the dispatcher sends what waited. A throwaway redis-server on its
own port, stopped with SIGSTOP; never the shared one.
"""

from __future__ import annotations

import os
import signal
import threading

import httpx
import pytest

from tests.conftest import free_port, wait_for
from tests.platform.apiprocs import api_env, start_api, stop
from tests.platform.test_outages import _alerts, _redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _finishes(call, *, guard_s: float = 120) -> dict:
    """Run ``call`` in a thread; the outcome, or ``{"hung": True}`` when it has not returned after ``guard_s``."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:  # noqa: BLE001 - the exception is the outcome under test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(guard_s)
    return outcome if not thread.is_alive() else {"hung": True}


def test_a_publish_to_a_hung_redis_fails_instead_of_hanging(tmp_path):
    from services.config import Settings
    from services.worker.celery_app import create_celery

    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    server = _redis(port, tmp_path)
    app = create_celery(Settings(broker_url=broker, result_backend=broker, database_url="sqlite://"))
    try:
        with app.producer_or_acquire() as producer:  # the pooled connection exists before the hang, as in the API
            app.send_task("aiops.observe", args=[1], producer=producer, ignore_result=True)
        os.kill(server.pid, signal.SIGSTOP)

        def publish() -> str:
            with app.producer_or_acquire() as producer:
                # as ``services.worker.queue.enqueue`` sends (the API's dispatcher, note_resolved)
                return app.send_task("aiops.observe", args=[2], producer=producer, ignore_result=True).id

        outcome = _finishes(publish)
        assert "hung" not in outcome, "a publish to a stopped Redis never returned"
        assert "error" in outcome, outcome  # and it failed: the caller keeps the row in its outbox
    finally:
        os.kill(server.pid, signal.SIGCONT)
        stop(server)


def test_api_answers_while_redis_hangs_and_dispatches_when_it_answers_again(tmp_path, moto_endpoint):
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    from services.storage.migrate import upgrade

    upgrade(url)
    env = api_env(database_url=url, moto_endpoint=moto_endpoint, workdir=tmp_path, broker=broker)
    server = _redis(port, tmp_path)
    api, base = start_api(env=env, workdir=tmp_path / "api", name="api")
    stopped = False
    try:
        first = httpx.post(f"{base}/api/v1/alerts", json={"name": "Up", "node": "n1"}, timeout=60)
        assert first.status_code == 202 and first.json()["queued"]
        wait_for(lambda: _alerts(url, dispatched=False) == 0, timeout=30, message="the API's dispatcher sent it")

        os.kill(server.pid, signal.SIGSTOP)
        stopped = True
        # every call below would wait forever on a Redis socket without a timeout (httpx gives up after 60 s)
        opened = [httpx.post(f"{base}/api/v1/alerts", json={"name": "Hung", "node": f"h{i}"}, timeout=60)
                  for i in range(3)]
        resolved = httpx.post(f"{base}/api/v1/alerts", json={"name": "Up", "node": "n1", "status": "resolved"},
                              timeout=60)
        ready = httpx.get(f"{base}/readyz", timeout=60)
        assert [r.status_code for r in opened] == [202, 202, 202]
        assert resolved.status_code == 202 and len(resolved.json()["resolved"]) == 1
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.json()
        assert _alerts(url, dispatched=False) == 3  # stored, waiting in the outbox

        os.kill(server.pid, signal.SIGCONT)
        stopped = False
        wait_for(lambda: _alerts(url, dispatched=False) == 0, timeout=90,
                 message="the dispatcher sent the outbox once Redis answered again")
        assert httpx.get(f"{base}/readyz", timeout=60).json()["status"] == "ready"
    finally:
        if stopped:
            os.kill(server.pid, signal.SIGCONT)
        stop(api)
        stop(server)
