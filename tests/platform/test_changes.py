"""Change events over real HTTP routes: the shapes CI/CD tools post are stored once and served to
diagnosis through the telemetry's ``changes``; bad bodies are 4xx problems that say why."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from agents.diagnosis.case import gather_case
from agents.protocols import NullTelemetry
from services.connectors.fleet import StoredSignals
from tests.conftest import FIXTURES, install_settings

CHANGES = FIXTURES / "changes"


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        yield client


def _fixture(name: str) -> dict:
    return json.loads((CHANGES / name).read_text())


def _stored(env, **kw) -> list[dict]:
    """Every stored change, however old (the fixtures' deploys happened in 2019)."""
    from services.changes.service import recent_changes

    return recent_changes(env["AIOPS_DATABASE_URL"], minutes=60 * 24 * 365 * 20, **kw)


def _recent(client, **params) -> list[dict]:
    response = client.get("/api/v1/changes", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_generic_events_are_stored_once_and_served_to_diagnosis(client, platform_env):
    now = datetime.now(UTC)
    body = {"changes": [
        {"component": "checkout", "kind": "deploy", "version": "v42", "at": now.isoformat(), "id": "ci-1",
         "detail": "image checkout:v42"},
        {"service": "search", "kind": "config", "at": (now - timedelta(minutes=5)).timestamp()},
        {"component": "old", "at": (now - timedelta(hours=3)).isoformat()},
    ]}
    first = client.post("/api/v1/changes", json=body)
    assert first.status_code == 202 and first.json() == {"accepted": 3, "stored": 3, "duplicates": 0}
    again = client.post("/api/v1/changes", json=body)  # a redelivered webhook
    assert again.json() == {"accepted": 3, "stored": 0, "duplicates": 3}

    telemetry = StoredSignals(NullTelemetry(), database_url=platform_env["AIOPS_DATABASE_URL"])
    changes = telemetry.changes(minutes=30)
    assert [(c["component"], c["kind"]) for c in changes] == [("checkout", "deploy"), ("search", "config")]
    assert changes[0]["detail"] == "image checkout:v42" and abs(changes[0]["at"] - now.timestamp()) < 1
    assert [c["component"] for c in _recent(client, minutes=30, component="search")] == ["search"]
    # the diagnoser's case carries the deploy on the alerted component as change evidence
    case = gather_case(telemetry, {"service": "checkout", "starts_at": now.isoformat()}, minutes=30)
    assert [(c["component"], c["change"]) for c in case["changes"]] == [("checkout", "deploy")]


def test_github_deployment_and_status_payloads(client, platform_env):
    deployment, status = _fixture("github_deployment.json"), _fixture("github_deployment_status.json")
    assert client.post("/api/v1/changes", json=deployment,
                       headers={"X-GitHub-Event": "deployment"}).json()["stored"] == 1
    assert client.post("/api/v1/changes", json=status,
                       headers={"X-GitHub-Event": "deployment_status"}).json()["stored"] == 1
    items = _stored(platform_env)
    by_status = {c["status"]: c for c in items if c["source"] == "github"}
    assert set(by_status) == {"created", "success"}
    done = by_status["success"]
    assert done["component"] == "Hello-World" and done["version"] == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert done["environment"] == "production" and "success" in done["detail"]
    assert done["at"] == datetime(2019, 5, 15, 15, 20, 55, tzinfo=UTC).timestamp()
    # a workflow naming the component in the deployment payload wins over the repository name
    named = json.loads(json.dumps(status))
    named["deployment"]["payload"] = {"component": "checkout"}
    named["deployment_status"]["id"] = 1
    client.post("/api/v1/changes", json=named, headers={"X-GitHub-Event": "deployment_status"})
    assert [c["component"] for c in _stored(platform_env, component="checkout")] == ["checkout"]
    refused = client.post("/api/v1/changes", json={"zen": "hi"}, headers={"X-GitHub-Event": "push"})
    assert refused.status_code == 422 and "deployment_status" in refused.json()["detail"]


def test_github_signed_webhook_route(client, platform_env):
    body = (CHANGES / "github_deployment_status.json").read_bytes()
    headers = {"X-GitHub-Event": "deployment_status", "Content-Type": "application/json"}
    assert client.post("/api/v1/changes/github", content=body, headers=headers).status_code == 404
    install_settings(github_webhook_secret="s3cret")
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as signed:
        bad = signed.post("/api/v1/changes/github", content=body,
                          headers={**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64})
        assert bad.status_code == 401 and bad.headers["content-type"].startswith("application/problem+json")
        good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        ok = signed.post("/api/v1/changes/github", content=body, headers={**headers, "X-Hub-Signature-256": good})
        assert ok.status_code == 202 and ok.json()["stored"] == 1


def test_argocd_notification_shapes(client, platform_env):
    assert client.post("/api/v1/changes", json=_fixture("argocd_webhook.json")).json()["stored"] == 1
    assert client.post("/api/v1/changes", json=_fixture("argocd_app_deployed_catalog.json")).json()["stored"] == 1
    assert client.post("/api/v1/changes", json=_fixture("argocd_app_deployed_catalog.json")).json()["duplicates"] == 1
    items = [c for c in _stored(platform_env) if c["source"] == "argocd"]
    assert {c["component"] for c in items} == {"checkout"}
    assert {c["version"] for c in items} == {"8f3c2a1d9e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a"}
    webhook = next(c for c in items if c["status"] == "success")
    assert webhook["environment"] == "shop" and "Healthy" in webhook["detail"]


@pytest.mark.parametrize("body, reason", [
    ({"kind": "deploy"}, "component is required"),
    ({"component": "a", "kind": "explode"}, "is not one of"),
    ({"component": "a", "at": "yesterday"}, "not an ISO 8601"),
    ({"component": ["a"]}, "must be a string"),
    ({"changes": []}, "no change event"),
    ([1], "must be an object"),
    ({"source": "argocd"}, "app is required"),
])
def test_bad_change_bodies_are_422_problems(client, body, reason):
    response = client.post("/api/v1/changes", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"]


def test_not_json_is_a_problem_too(client):
    response = client.post("/api/v1/changes", content=b"{nope", headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and response.json()["detail"]


def test_a_broken_store_leaves_the_source_answer(tmp_path):
    class Source(NullTelemetry):
        def changes(self, *, minutes: int = 60):
            return [{"at": 1.0, "component": "x", "kind": "deploy", "detail": "from the source"}]

    telemetry = StoredSignals(Source(), database_url=f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    assert [c["detail"] for c in telemetry.changes(minutes=5)] == ["from the source"]
    assert telemetry.traces("x", minutes=5) == [] and telemetry.topology() == {}
