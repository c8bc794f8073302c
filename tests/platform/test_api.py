"""API contract: health, problem+json errors, store-before-202, dedup, pagination, metrics, auth."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import FIXTURES, install_settings


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        yield client


def _count_alerts(env) -> int:
    from services.alerts.models import Alert
    from services.storage.base import session_scope

    with session_scope(env["AIOPS_DATABASE_URL"]) as session:
        return session.scalar(select(func.count(Alert.id)))


def test_health_ready_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/alerts" in paths and "/api/v1/incidents/{incident_id}" in paths


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "not valid JSON"),
    (b"[]", 422, "empty list"),
    (b'"hello"', 422, "expected a JSON object"),
    (b'{"foo": 1}', 422, "unrecognised alert format"),
    (b'{"version": "4", "groupKey": "x", "alerts": [{"labels": {"severity": "high"}}]}', 422, "missing alertname"),
    (b'{"Records": [{"Sns": {"Message": "not json"}}]}', 422, "CloudWatch alarm"),
])
def test_malformed_alerts_get_problem_json_and_lose_nothing(client, platform_env, body, status, fragment):
    ok = client.post("/api/v1/alerts", json={"name": "Seed", "node": "n1"})
    assert ok.status_code == 202
    before = _count_alerts(platform_env)
    response = client.post("/api/v1/alerts", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and fragment in problem["detail"]
    assert _count_alerts(platform_env) == before  # the bad request stored nothing and removed nothing


def test_alert_is_stored_before_202_and_deduplicated(client, platform_env):
    payload = json.loads((FIXTURES / "alerts" / "alertmanager_2_alerts.json").read_text())
    first = client.post("/api/v1/alerts", json=payload)
    assert first.status_code == 202
    assert len(first.json()["new"]) == 2
    assert _count_alerts(platform_env) == 2  # committed before the response left
    again = client.post("/api/v1/alerts", json=payload)
    assert sorted(again.json()["duplicates"]) == sorted(first.json()["new"]) and again.json()["new"] == []
    items = client.get("/api/v1/alerts").json()["items"]
    assert {a["count"] for a in items} == {2}


def test_cloudwatch_sns_envelope_is_understood(client):
    payload = json.loads((FIXTURES / "alerts" / "cloudwatch_alarm_sns.json").read_text())
    response = client.post("/api/v1/alerts", json=payload)
    assert response.status_code == 202, response.text
    alert = client.get("/api/v1/alerts").json()["items"][0]
    assert alert["source"] == "cloudwatch" and alert["node"] == "TestInstance" and alert["severity"] == "high"


def test_pagination_and_empty_state(client):
    empty = client.get("/api/v1/incidents").json()
    assert empty == {"total": 0, "page": 1, "per_page": 25, "items": []}
    for i in range(7):
        client.post("/api/v1/alerts", json={"name": f"A{i}", "node": f"n{i}"})
    page = client.get("/api/v1/alerts", params={"per_page": 3, "page": 3}).json()
    assert page["total"] == 7 and len(page["items"]) == 1
    assert client.get("/api/v1/alerts", params={"per_page": 0}).status_code == 422


def test_unknown_incident_is_404_problem(client):
    response = client.get("/api/v1/incidents/999")
    assert response.status_code == 404
    assert response.json()["detail"] == "incident 999 does not exist"


def test_metrics_exposes_prometheus_text(client):
    client.post("/api/v1/alerts", json={"name": "M", "node": "n"})
    client.post("/api/v1/alerts", json={"name": "M", "node": "n"})
    text = client.get("/metrics").text
    assert "aiops_alerts_received_total 2.0" in text
    assert "aiops_incidents_open" in text and "aiops_queue_depth" in text


def test_auth_required_rejects_anonymous_and_accepts_token(platform_env, monkeypatch):
    from services.api.app import create_app
    from services.auth.service import create_token

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    install_settings()
    token = create_token(platform_env["AIOPS_DATABASE_URL"], user="alice")
    with TestClient(create_app(start_workers=False)) as client:
        assert client.post("/api/v1/alerts", json={"name": "X"}).status_code == 401
        bad = client.post("/api/v1/alerts", json={"name": "X"}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = client.post("/api/v1/alerts", json={"name": "X"}, headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 202
