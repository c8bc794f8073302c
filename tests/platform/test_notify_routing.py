"""Notification routes and silences (Alertmanager-style matchers), from an alert to the outbox rows.

Routes pick destinations by the incident's labels (first match wins unless ``continue``; no match
= every destination); a silence mutes matching events, which are still written to the outbox as
``silenced`` rows an operator can see and redeliver. Bad matchers are refused at start (routes)
or with a 422 naming the problem (silences).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.notify.matchers import MatcherError, parse_matcher
from tests.conftest import install_settings

API, DB, SLACK_DB, PAGER, DEFAULT = (f"http://127.0.0.1:9/{n}" for n in ("api", "db", "slack-db", "pager", "all"))
ROUTES = [
    {"matchers": ['service="api"'], "webhook_urls": [API]},
    {"matchers": ['service=~"db|cache"'], "webhook_urls": [DB], "slack_webhook_url": SLACK_DB, "continue": True},
    {"matchers": ['severity="critical"', 'kind!="resolved"'], "webhook_urls": [PAGER]},
]


def test_matchers_follow_alertmanager():
    labels = {"service": "db", "severity": "critical", "team": None}
    assert parse_matcher('service="db"').matches(labels)
    assert parse_matcher("service=~db|cache").matches(labels)
    assert not parse_matcher('service=~"d"').matches(labels), "a regex matches the whole value"
    assert parse_matcher('team=""').matches(labels), "an absent or null label is the empty string"
    assert not parse_matcher('team!=""').matches(labels)
    assert parse_matcher('severity!~"info|warning"').matches(labels)
    assert str(parse_matcher(' service = "a b" ')) == 'service="a b"'
    for bad in ("service", "1abc=x", 'service=~"("', 'service="a"b"'):
        with pytest.raises(MatcherError):
            parse_matcher(bad)


def test_a_bad_route_stops_the_process_at_start(platform_env):
    with pytest.raises(ValidationError, match=r"notify_routes\[0\].*bad regular expression"):
        install_settings(notify_routes=[{"matchers": ['service=~"("'], "webhook_urls": [API]}])
    with pytest.raises(ValidationError, match=r"unknown keys \['webhooks'\]"):
        install_settings(notify_routes=[{"matchers": [], "webhooks": [API]}])


def _destinations(client: TestClient, incident_id: int) -> dict[str, str]:
    items = client.get("/api/v1/integrations/webhooks/deliveries", params={"per_page": 500}).json()["items"]
    return {i["destination"]: i["status"] for i in items if i["incident_id"] == incident_id}


def _open(client: TestClient, **alert) -> int:
    answer = client.post("/api/v1/alerts", json={"name": "Probe", "summary": "s", **alert})
    assert answer.status_code == 202, answer.text
    return answer.json()["incidents_opened"][0]


def test_routes_pick_destinations_and_silences_mute_without_losing(platform_env):
    from services.api.app import create_app

    # every alert here opens its own incident (routing is the subject, not correlation: web twice would join)
    settings = install_settings(webhook_urls=[DEFAULT], notify_routes=ROUTES, incident_correlation_window_s=0)
    with TestClient(create_app(settings, start_workers=False), raise_server_exceptions=False) as client:
        assert _destinations(client, _open(client, service="api", severity="critical")) == {API: "pending"}
        assert _destinations(client, _open(client, service="db", severity="critical")) == \
            {DB: "pending", SLACK_DB: "pending", PAGER: "pending"}  # continue: the critical route adds the pager
        assert _destinations(client, _open(client, service="cache", severity="warning")) == \
            {DB: "pending", SLACK_DB: "pending"}
        assert _destinations(client, _open(client, service="web", severity="warning")) == {DEFAULT: "pending"}

        silence = client.post("/api/v1/integrations/silences", json={
            "matchers": ['service="web"', 'kind=~"opened|escalated"'], "duration_s": 3600,
            "comment": "web deploy window"})
        assert silence.status_code == 201, silence.text
        muted = _open(client, service="web", severity="warning", node="web-2")
        assert _destinations(client, muted) == {DEFAULT: "silenced"}
        row = client.get("/api/v1/integrations/webhooks/deliveries", params={"status": "silenced"}).json()["items"][0]
        assert row["last_error"] == f"muted by silence {silence.json()['id']}" and row["attempts"] == 0
        assert _destinations(client, _open(client, service="api", node="api-9")) == {API: "pending"}, \
            "a silence mutes only what it matches"
        active = client.get("/api/v1/integrations/silences", params={"active": True}).json()
        assert active["total"] == 1 and active["items"][0]["comment"] == "web deploy window"

        assert client.delete(f"/api/v1/integrations/silences/{silence.json()['id']}").status_code == 200
        assert client.delete(f"/api/v1/integrations/silences/{silence.json()['id']}").status_code == 409
        assert client.get("/api/v1/integrations/silences", params={"active": True}).json()["total"] == 0
        assert _destinations(client, _open(client, service="web", node="web-3")) == {DEFAULT: "pending"}
        again = client.post(f"/api/v1/integrations/webhooks/deliveries/{row['id']}/redeliver")
        assert again.status_code == 202 and again.json()["status"] == "pending"  # the muted event can still go out

        bad = client.post("/api/v1/integrations/silences", json={"matchers": ['service=~"("'], "duration_s": 600})
        assert bad.status_code == 422 and "bad regular expression" in bad.json()["detail"]
        assert client.post("/api/v1/integrations/silences", json={"matchers": [], "duration_s": 600}).status_code == 422
        assert client.delete("/api/v1/integrations/silences/999").status_code == 404
        audit = [a["action"] for a in client.get("/api/v1/audit").json()["items"]]
        assert "silences.create" in audit and "silences.expire" in audit
