"""New alert sources, each from a real payload fixture to an incident through the API.

PagerDuty Events v2 (trigger / acknowledge / resolve by ``dedup_key``, answered like PagerDuty)
and the SNS subscription handshake (the confirmation URL fetched from a loopback server standing
in for SNS). Every malformed request gets a 4xx whose text names the problem, and stores nothing.
"""

from __future__ import annotations

import copy
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import FIXTURES, install_settings
from tests.platform.hooks import Receiver
from tests.platform.sns_signing import LocalSns

PD = json.loads((FIXTURES / "alerts" / "pagerduty_events_v2_trigger.json").read_text())
SNS_CONFIRM = json.loads((FIXTURES / "alerts" / "sns_subscription_confirmation.json").read_text())
ENQUEUE = "/api/v1/alerts/pagerduty/enqueue"


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False), raise_server_exceptions=False) as test_client:
        yield test_client


def _incident_of(client: TestClient, source: str) -> dict:
    alerts = [a for a in client.get("/api/v1/alerts").json()["items"] if a["source"] == source]
    assert len(alerts) == 1, alerts
    return alerts[0]


def test_pagerduty_trigger_acknowledge_resolve_by_dedup_key(client):
    answer = client.post(ENQUEUE, json=PD)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "success", "message": "Event processed", "dedup_key": "db-17/postgres"}
    alert = _incident_of(client, "pagerduty")
    assert (alert["node"], alert["service"], alert["severity"], alert["status"]) == \
        ("db-17.example.net", "postgres", "critical", "firing")
    incident = client.get(f"/api/v1/incidents/{alert['incident_id']}").json()
    assert incident["status"] == "open" and "Disk 97% full" in incident["summary"] + incident["title"]

    again = client.post(ENQUEUE, json=PD)  # PagerDuty de-duplicates a repeated trigger by its key; so do we
    assert again.status_code == 202 and len(client.get("/api/v1/incidents").json()["items"]) == 1

    ack = {"routing_key": PD["routing_key"], "event_action": "acknowledge", "dedup_key": "db-17/postgres"}
    assert client.post(ENQUEUE, json=ack).status_code == 202
    assert client.post(ENQUEUE, json=ack).status_code == 202
    timeline = client.get(f"/api/v1/incidents/{alert['incident_id']}").json()["timeline"]
    assert [e["kind"] for e in timeline].count("acknowledged") == 1

    resolve = {**ack, "event_action": "resolve"}
    assert client.post(ENQUEUE, json=resolve).json()["dedup_key"] == "db-17/postgres"
    assert _incident_of(client, "pagerduty")["status"] == "resolved"


def test_pagerduty_trigger_without_dedup_key_gets_one():
    from services.ingest.pagerduty import parse_event

    body = copy.deepcopy(PD)
    del body["dedup_key"]
    event = parse_event(body)
    assert len(event.dedup_key) == 32 and event.alert.fingerprint == event.dedup_key


@pytest.mark.parametrize(("change", "reason"), [
    ({"event_action": "explode"}, "event_action"),
    ({"routing_key": ""}, "routing_key"),
    ({"event_action": "resolve", "dedup_key": None}, "dedup_key: required for resolve"),
    ({"payload": {"summary": "x", "severity": "critical"}}, "payload.source: required"),
    ({"payload": {**PD["payload"], "severity": "sev1"}}, "payload.severity"),
    ({"payload": "not an object"}, "payload: required for trigger"),
])
def test_pagerduty_bad_events_are_refused_with_the_reason(client, change, reason):
    body = {k: v for k, v in {**PD, **change}.items() if v is not None}
    answer = client.post(ENQUEUE, json=body)
    assert answer.status_code == 422 and reason in answer.json()["detail"], answer.text
    assert client.get("/api/v1/alerts").json()["total"] == 0


def test_a_pagerduty_event_on_the_generic_door_is_pointed_to_its_own(client):
    answer = client.post("/api/v1/alerts", json=PD)
    assert answer.status_code == 422 and ENQUEUE in answer.json()["detail"]


def test_sns_subscription_is_confirmed_through_its_subscribe_url(platform_env):
    from services.api.app import create_app

    sns = Receiver("ok")
    signer = LocalSns()  # the messages are signed as SNS signs them (the fixture's own signature is AWS's)
    try:
        query = urlsplit(SNS_CONFIRM["SubscribeURL"]).query
        local = signer.sign({**SNS_CONFIRM, "SubscribeURL": f"http://127.0.0.1:{sns.port}/?{query}"})
        settings = install_settings(sns_confirm_hosts=[f"127.0.0.1:{sns.port}"])
        app = create_app(settings, start_workers=False)
        app.state.sns_cert_fetcher = signer.fetch
        with TestClient(app, raise_server_exceptions=False) as client:
            answer = client.post("/api/v1/alerts", content=json.dumps(local),
                                 headers={"content-type": "text/plain; charset=UTF-8",
                                          "x-amz-sns-message-type": "SubscriptionConfirmation"})
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"sns": "SubscriptionConfirmation", "topic": SNS_CONFIRM["TopicArn"],
                                     "confirmed": True}
            confirmed = parse_qs(urlsplit(sns.requests[0]["path"]).query)
            assert confirmed["Action"] == ["ConfirmSubscription"] and confirmed["Token"] == [SNS_CONFIRM["Token"]]

            # a confirmation naming any other host is not fetched (the request is unauthenticated: SSRF)
            evil = signer.sign({**SNS_CONFIRM, "SubscribeURL": "http://169.254.169.254/latest/meta-data/"})
            refused = client.post("/api/v1/alerts", json=evil)
            assert refused.status_code == 422 and "not an SNS endpoint" in refused.json()["detail"]
            sns.set(403)  # SNS refuses an expired token: the sender is told, nothing stored
            expired = client.post("/api/v1/alerts", json=local)
            assert expired.status_code == 422 and "refused the confirmation (403)" in expired.json()["detail"]
            sns.set("down")
            down = client.post("/api/v1/alerts", json=local)
            assert down.status_code == 503  # SNS re-sends the confirmation later
            unsubscribed = client.post("/api/v1/alerts", json=signer.sign({**SNS_CONFIRM,
                                                                           "Type": "UnsubscribeConfirmation"}))
            assert unsubscribed.status_code == 202 and unsubscribed.json()["confirmed"] is False
            assert client.get("/api/v1/alerts").json()["total"] == 0
            assert len(sns.requests) == 2
    finally:
        sns.close()


def test_grafana_unified_alerting_firing_then_resolved(client):
    firing = json.loads((FIXTURES / "alerts" / "grafana_alert_9.json").read_text())
    resolved = json.loads((FIXTURES / "alerts" / "grafana_alert_9_resolved.json").read_text())
    answer = client.post("/api/v1/alerts", json=firing)
    assert answer.status_code == 202 and len(answer.json()["incidents_opened"]) == 1, answer.text
    alert = _incident_of(client, "grafana")
    assert alert["name"] == "Test alert" and alert["status"] == "firing"
    assert alert["summary"] == "This is a summary field, failure on some_host"
    from services.ingest.normalize import normalize

    annotations = normalize(firing)[0].annotations  # what the rule saw travels with the alert
    assert "value=24" in annotations["valueString"] and "dashboardURL" not in annotations
    incident = client.get(f"/api/v1/incidents/{alert['incident_id']}").json()
    assert incident["status"] == "open"

    assert client.post("/api/v1/alerts", json=resolved).json()["resolved"] == [alert["id"]]
    closed = _incident_of(client, "grafana")
    assert closed["status"] == "resolved" and closed["ends_at"].startswith("2022-06-17T00:51:24")


def test_datadog_default_template_trigger_then_recovery(client):
    triggered = json.loads((FIXTURES / "alerts" / "datadog_webhook_default.json").read_text())
    answer = client.post("/api/v1/alerts", json=triggered)
    assert answer.status_code == 202 and len(answer.json()["incidents_opened"]) == 1, answer.text
    alert = _incident_of(client, "datadog")
    assert (alert["name"], alert["status"], alert["severity"]) == ("Web tier disk latency", "firing", "high")
    assert "Disk latency above 200 ms" in alert["summary"]
    # Datadog's recovery notice is the same monitor with a [Recovered] title (a real one differs only there)
    recovered = {**triggered, "title": "[Recovered] Web tier disk latency", "id": "7000000000000000002"}
    assert client.post("/api/v1/alerts", json=recovered).json()["resolved"] == [alert["id"]]

    unclear = {**triggered, "title": "Web tier disk latency"}
    refused = client.post("/api/v1/alerts", json=unclear)
    assert refused.status_code == 422 and "alert_transition" in refused.json()["detail"]


def test_datadog_extended_template_carries_host_tags_and_priority():
    from services.ingest.normalize import normalize

    triggered = json.loads((FIXTURES / "alerts" / "datadog_webhook_default.json").read_text())
    alert = normalize({**triggered, "alert_transition": "Triggered", "hostname": "web-01", "priority": "P1",
                       "alert_id": "4242", "tags": "service:api,env:prod,kube_cluster_name:prod-us"})[0]
    assert (alert.node, alert.service, alert.cluster, alert.severity) == ("web-01", "api", "prod-us", "critical")
    assert alert.fingerprint == "4242:web-01" and alert.labels["env"] == "prod"
    assert alert.starts_at.isoformat() == "2025-11-30T10:53:20+00:00"  # $DATE is epoch milliseconds
