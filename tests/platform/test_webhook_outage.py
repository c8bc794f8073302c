"""No webhook event lost across a receiver outage and a SIGKILLed worker (distributed, real Redis).

Alerts come in through the API process; each opens an incident whose "opened" event goes to three
destinations: one receiver that is down (connection refused) and then answers 503 before it
recovers, one that is always up, one that refuses with 410. A notify worker is SIGKILLed mid-way
and started again; beat runs the outbox sweep. Every event must reach the two good receivers once
per event id, and the refusing one exactly once each (dead letters, no retry storm).
"""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from services.notify.service import verify_signature
from tests.conftest import wait_for
from tests.platform.hooks import Receiver
from tests.platform.test_distributed import cluster, database_url  # noqa: F401  (shared fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "outage-secret"
EVENTS = 24


@pytest.fixture
def hook_targets(monkeypatch):
    """Three receivers, and the webhook settings in the environment the cluster's processes inherit."""
    flaky, steady, gone = Receiver("down"), Receiver("ok"), Receiver(410)
    for key, value in {"AIOPS_WEBHOOK_URLS": json.dumps([flaky.url, steady.url, gone.url]),
                       "AIOPS_WEBHOOK_SECRET": SECRET, "AIOPS_WEBHOOK_TIMEOUT_S": "2",
                       "AIOPS_WEBHOOK_BACKOFF_S": "0.5", "AIOPS_WEBHOOK_BACKOFF_MAX_S": "2",
                       "AIOPS_WEBHOOK_MAX_ATTEMPTS": "500", "AIOPS_WEBHOOK_SWEEP_INTERVAL_S": "2"}.items():
        monkeypatch.setenv(key, value)
    yield {"flaky": flaky, "steady": steady, "gone": gone}
    for receiver in (flaky, steady, gone):
        receiver.close()


def _deliveries(base: str) -> list[dict]:
    return httpx.get(f"{base}/api/v1/integrations/webhooks/deliveries", params={"per_page": 500}).json()["items"]


def test_receiver_outage_and_worker_kill_lose_no_event(hook_targets, cluster):  # noqa: F811
    flaky, steady, gone = hook_targets["flaky"], hook_targets["steady"], hook_targets["gone"]
    spawn, base = cluster["spawn"], cluster["base"]
    worker = spawn("worker", "--queues", "notify", "--concurrency", "2", name="worker-notify")
    spawn("beat", name="beat")
    started = time.monotonic()
    for i in range(EVENTS):
        response = httpx.post(f"{base}/api/v1/alerts", json={
            "name": "DiskFull", "severity": "high", "node": f"node-{i:02d}", "summary": f"/var is full on node-{i:02d}"})
        assert response.status_code == 202 and response.json()["incidents_opened"], response.text
        if i == EVENTS // 3:
            os.killpg(worker.pid, signal.SIGKILL)  # mid-delivery and mid-back-off
            worker.wait(timeout=10)
        if i == 2 * EVENTS // 3:
            spawn("worker", "--queues", "notify", "--concurrency", "2", name="worker-notify-2")
        time.sleep(0.25)
    flaky.set(503)  # the receiver comes back broken for a while ...
    wait_for(lambda: flaky.hits() >= 5, timeout=60, message="the 503 phase retried")
    flaky.set("ok")  # ... then healthy
    outage_s = time.monotonic() - started

    def settled():
        rows = _deliveries(base)
        return rows if len(rows) == 3 * EVENTS and all(r["status"] != "pending" for r in rows) else None

    rows = wait_for(settled, timeout=180, interval=1.0, message="every delivery settled")
    time.sleep(2)  # anything still in flight (a duplicate, a retry storm) would arrive now
    by_destination = {url: [r for r in rows if r["destination"] == url] for url in (flaky.url, steady.url, gone.url)}
    event_ids = {r["event_id"] for r in rows}
    assert len(event_ids) == EVENTS
    figures = {"events": EVENTS, "sent": len(rows), "delivered": sum(r["status"] == "delivered" for r in rows),
               "dead_lettered": sum(r["status"] == "dead" for r in rows), "outage_s": round(outage_s, 1)}
    figures["lost"] = figures["sent"] - figures["delivered"] - figures["dead_lettered"]
    for name, receiver in (("flaky", flaky), ("steady", steady)):
        accepted = receiver.accepted()
        ids = [r["headers"]["x-aiops-event-id"] for r in accepted]
        assert set(ids) == event_ids, f"{name} missed {len(event_ids - set(ids))} events"
        figures[f"{name}_duplicate_requests"] = len(ids) - len(set(ids))
        for hit in accepted:
            verify_signature(hit["body"], header=hit["headers"]["x-aiops-signature"], secret=SECRET,
                             tolerance_s=600)
            assert hit["event"]["event_id"] == hit["headers"]["x-aiops-event-id"]
    figures["flaky_refused_requests"] = flaky.hits() - len(flaky.accepted())
    figures["gone_requests"] = gone.hits()
    print("webhook outage figures:", json.dumps(figures))
    assert all(r["status"] == "delivered" for r in by_destination[flaky.url] + by_destination[steady.url])
    assert all(r["status"] == "dead" and r["attempts"] == 1 for r in by_destination[gone.url])
    assert gone.hits() == EVENTS, "410 is final: one request per event"
    assert figures["lost"] == 0
    # at least once, de-duplicated by event id: a repeat only if a worker died between send and record
    assert figures["flaky_duplicate_requests"] + figures["steady_duplicate_requests"] <= 2, figures
