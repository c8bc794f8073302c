"""The webhook outbox against real HTTP receivers on loopback (embedded mode, in this process).

A refusing receiver (4xx) is asked once and its rows are dead letters the API lists and can
redeliver; a 5xx receiver is retried until it answers; a healthy receiver is never asked twice
because another one failed; a replayed or stale signature is refused by the documented verifier.
The outage + worker restart test on Redis is in ``test_webhook_outage.py``.
"""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from services.notify.service import (
    ReplayGuard,
    WebhookVerificationError,
    notify_event,
    sign,
    verify_signature,
)
from tests.conftest import install_settings, wait_for
from tests.platform.hooks import Receiver

SECRET = "outbox-secret"


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(mode: str | int = "ok") -> Receiver:
        made.append(Receiver(mode))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _settle(client: TestClient, *, total: int) -> list[dict]:
    def settled():
        items = client.get("/api/v1/integrations/webhooks/deliveries", params={"per_page": 500}).json()["items"]
        return items if len(items) == total and all(i["status"] != "pending" for i in items) else None
    return wait_for(settled, timeout=60, message="every delivery delivered or dead-lettered")


def test_4xx_is_dead_lettered_once_listed_and_redelivered(platform_env, receivers):
    from services.api.app import create_app

    gone, steady = receivers(410), receivers("ok")
    settings = install_settings(webhook_urls=[gone.url, steady.url], webhook_secret=SECRET, webhook_backoff_s=0.2)
    with TestClient(create_app(settings)) as client:
        for i in range(3):
            notify_event(settings, incident_id=0, title=f"drift {i}", kind="drift_proposed", message="m", data={})
        items = _settle(client, total=6)
        dead = client.get("/api/v1/integrations/webhooks/deliveries", params={"status": "dead"}).json()
        assert dead["total"] == 3 and {d["destination"] for d in dead["items"]} == {gone.url}
        assert all(d["attempts"] == 1 and d["last_status_code"] == 410 and "not retried" in d["last_error"]
                   for d in dead["items"])
        time.sleep(1.0)  # a retry storm would show up here
        assert gone.hits() == 3, "a 4xx is final: one request per event, no retry"
        assert len(steady.accepted()) == 3, "the healthy destination got each event once"
        assert {i["event_id"] for i in items if i["destination"] == steady.url} == \
            {r["headers"]["x-aiops-event-id"] for r in steady.accepted()}

        gone.set("ok")  # the receiver is fixed: the operator redelivers one dead letter
        target = dead["items"][0]
        again = client.post(f"/api/v1/integrations/webhooks/deliveries/{target['id']}/redeliver")
        assert again.status_code == 202, again.text
        wait_for(lambda: gone.accepted(), timeout=30, message="redelivered event")
        assert gone.accepted()[0]["headers"]["x-aiops-event-id"] == target["event_id"]
        wait_for(lambda: client.get("/api/v1/integrations/webhooks/deliveries",
                                    params={"event_id": target["event_id"]}).json()["items"][0]["status"] == "delivered"
                 or None, timeout=30, message="row marked delivered")
        assert client.post("/api/v1/integrations/webhooks/deliveries/999999/redeliver").status_code == 404
        assert client.get("/api/v1/integrations/webhooks/deliveries", params={"status": "lost"}).status_code == 422
        audit = client.get("/api/v1/audit").json()["items"]
        assert any(a["action"] == "webhooks.redeliver" for a in audit)


def test_5xx_and_connection_refused_are_retried_until_delivered(platform_env, receivers):
    from services.api.app import create_app

    flaky, steady = receivers(503), receivers("ok")
    settings = install_settings(webhook_urls=[flaky.url, steady.url], webhook_secret=SECRET, webhook_backoff_s=0.2,
                                webhook_backoff_max_s=0.5, webhook_max_attempts=50)
    with TestClient(create_app(settings)) as client:
        ids = notify_event(settings, incident_id=0, title="t", kind="drift_proposed", message="m", data={})
        wait_for(lambda: flaky.hits() >= 2, timeout=30, message="503 retried")
        flaky.set("down")
        time.sleep(1.0)
        flaky.set("ok")
        items = _settle(client, total=2)
    assert {i["status"] for i in items} == {"delivered"} and len(ids) == 2
    flaky_row = next(i for i in items if i["destination"] == flaky.url)
    assert flaky_row["attempts"] >= 3, flaky_row
    assert len(flaky.accepted()) == 1 and len(steady.accepted()) == 1, "each destination got the event once"
    for receiver in (flaky, steady):
        hit = receiver.accepted()[0]
        verify_signature(hit["body"], header=hit["headers"]["x-aiops-signature"], secret=SECRET)
        assert hit["event"]["event_id"] == hit["headers"]["x-aiops-event-id"] == flaky_row["event_id"]


def test_verifier_refuses_replays_stale_and_forged_signatures():
    body = json.dumps({"event_id": "e1", "kind": "opened"}).encode()
    now = 1_800_000_000
    header = sign(body, SECRET, timestamp=now)
    guard = ReplayGuard()
    assert verify_signature(body, header=header, secret=SECRET, now=now + 3, guard=guard) == now
    with pytest.raises(WebhookVerificationError, match="already accepted"):
        verify_signature(body, header=header, secret=SECRET, now=now + 4, guard=guard)  # replayed as is
    with pytest.raises(WebhookVerificationError, match="old"):
        verify_signature(body, header=header, secret=SECRET, now=now + 301)  # captured, replayed later
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_signature(body.replace(b"opened", b"resolved"), header=header, secret=SECRET, now=now)
    forged = f"t={now + 200},{header.split(',')[1]}"  # a fresh timestamp on an old digest
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_signature(body, header=forged, secret=SECRET, now=now + 200)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_signature(body, header=None, secret=SECRET, now=now)
    with pytest.raises(WebhookVerificationError, match="must be"):
        verify_signature(body, header="sha256=abc", secret=SECRET, now=now)
    # our own retry of the same event is signed anew and passes (the receiver dedups by event id)
    verify_signature(body, header=sign(body, SECRET, timestamp=now + 30), secret=SECRET, now=now + 31, guard=guard)


def test_rows_left_pending_by_a_dead_embedded_process_are_sent_at_the_next_start(platform_env, receivers):
    """Embedded mode has no beat: what a process staged but never sent (it died) goes out when the API starts."""
    from services.api.app import create_app
    from services.notify.service import stage_event
    from services.storage.base import session_scope

    steady = receivers("ok")
    settings = install_settings(webhook_urls=[steady.url], webhook_secret=SECRET)
    with session_scope(settings.database_url) as session:  # staged, committed, never queued: the process died here
        staged = [stage_event(session, settings, incident_id=0, title=f"t{i}", kind="drift_proposed", message="m",
                              data={})[0] for i in range(3)]
    assert steady.hits() == 0
    with TestClient(create_app(settings)) as client:
        items = _settle(client, total=3)
    assert {i["status"] for i in items} == {"delivered"} and sorted(i["id"] for i in items) == sorted(staged)
    assert len({r["headers"]["x-aiops-event-id"] for r in steady.accepted()}) == 3 == steady.hits()
