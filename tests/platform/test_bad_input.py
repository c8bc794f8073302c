"""No 5xx from input: every bad-input class the issue found, on SQLite and on PostgreSQL.

Each case asserts a 4xx problem+json (the field named where there is one) and that nothing was
stored; the accepted edge cases assert the value is stored as sent, not coerced.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import install_settings
from tests.platform.pgdb import fresh_postgres

AM = {"version": "4", "groupKey": "g", "status": "firing", "alerts": [{"labels": {"alertname": "A", "node": "n1"}}]}


def _am(**alert) -> bytes:
    body = json.loads(json.dumps(AM))
    body["alerts"][0].update(alert)
    return json.dumps(body).encode()


def _raw(text: str) -> bytes:
    return text.encode()


# (case, body bytes, expected status, fragment of the detail)
BAD_BODIES = [
    ("deep nesting (20k)", _raw('{"name":"x","labels":' + "[" * 20000 + "]" * 20000 + "}"), 422, "nested"),
    ("deep nesting (100)", _raw('{"name":"x","raw":' + "[" * 100 + "]" * 100 + "}"), 422, "nested deeper"),
    ("5,000-digit number", _raw('{"name":"x","v":' + "9" * 5000 + "}"), 422, "too large"),
    ("integer over 2^63", _raw('{"name":"x","v":9223372036854775808}'), 422, "64-bit"),
    ("NaN", _raw('{"name":"x","v":NaN}'), 422, "NaN"),
    ("Infinity", _raw('{"name":"x","v":-Infinity}'), 422, "Infinity"),
    ("float overflow 1e999", _raw('{"name":"x","v":1e999}'), 422, "overflows"),
    ("NUL escape in a string", _raw('{"name":"a\\u0000b","node":"n"}'), 422, "body.name: NUL"),
    ("NUL escape in a key", _raw('{"name":"a","labels":{"k\\u0000":"v"}}'), 422, "NUL"),
    ("lone surrogate", _raw('{"name":"\\ud800","node":"n"}'), 422, "surrogate"),
    ("raw NUL byte", b'{"name":"a\x00b"}', 400, "not valid JSON"),
    ("invalid UTF-8", b'{"name":"\xff\xfe"}', 400, "UTF-8"),
    ("node over 200 chars", json.dumps({"name": "x", "node": "n" * 201}).encode(), 422, "node"),
    ("service over 200 chars", json.dumps({"name": "x", "service": "s" * 500}).encode(), 422, "service"),
    ("name over 200 chars", json.dumps({"name": "x" * 201}).encode(), 422, "name"),
    ("source over 32 chars", json.dumps({"name": "x", "source": "s" * 33}).encode(), 422, "source"),
    ("groupKey of 10k chars", json.dumps({**AM, "groupKey": "g" * 10_000}).encode(), 422, "alert_group"),
    ("object as name", json.dumps({"name": {"a": 1}}).encode(), 422, "body.name: expected a string"),
    ("list as node", json.dumps({"name": "x", "node": ["a"]}).encode(), 422, "body.node"),
    ("object label value", json.dumps({"name": "x", "labels": {"a": {"b": 1}}}).encode(), 422, "body.labels.a"),
    ("labels as a list", json.dumps({"name": "x", "labels": ["a"]}).encode(), 422, "body.labels"),
    ("garbage startsAt", json.dumps({"name": "x", "startsAt": "yesterday-ish"}).encode(), 422, "startsAt"),
    ("number as startsAt", json.dumps({"name": "x", "startsAt": 12}).encode(), 422, "startsAt"),
    ("garbage Alertmanager startsAt", _am(startsAt="2024-13-45T99:00:00Z"), 422, "alerts[0].startsAt"),
    ("unknown status", json.dumps({"name": "x", "status": "exploded"}).encode(), 422, "status"),
    ("unknown Alertmanager status", _am(status="pending"), 422, "alerts[0].status"),
    ("CloudWatch Trigger as a string", json.dumps({"AlarmName": "a", "Trigger": "cpu"}).encode(), 422, "Trigger"),
    ("CloudWatch Dimensions not a list", json.dumps({"AlarmName": "a", "Trigger": {"Dimensions": 3}}).encode(), 422,
     "Dimensions"),
    ("CloudWatch AlarmName object", json.dumps({"AlarmName": {"x": 1}}).encode(), 422, "AlarmName"),
    ("CloudWatch unknown state", json.dumps({"AlarmName": "a", "NewStateValue": "MAYBE"}).encode(), 422, "state"),
    ("SNS message with NaN", json.dumps({"Type": "Notification", "Message": '{"AlarmName":"a","x":NaN}'}).encode(),
     422, "Message"),
    ("SNS message a number", json.dumps({"Type": "Notification", "Message": 5}).encode(), 422, "Message"),
    ("1,001 alerts in one request", json.dumps([{"name": f"a{i}"} for i in range(1001)]).encode(), 422, "at most"),
    ("Alertmanager alerts not a list", json.dumps({**AM, "alerts": {"a": 1}}).encode(), 422, "alerts"),
]

BAD_REQUESTS = [  # (case, method, path, kwargs, status)
    ("incident id >= 2^63", "GET", "/api/v1/incidents/9223372036854775808", {}, 422),
    ("incident id >= 2^31", "GET", "/api/v1/incidents/2147483648", {}, 422),
    ("incident id 0", "GET", "/api/v1/incidents/0", {}, 422),
    ("approval id huge", "POST", "/api/v1/approvals/99999999999999999999/decision", {"json": {"approved": True}}, 422),
    ("proposal id huge", "GET", "/api/v1/drift/proposals/9223372036854775808", {}, 422),
    ("page = 2^62", "GET", "/api/v1/incidents?page=4611686018427387904", {}, 422),
    ("page = 2^62 on alerts", "GET", "/api/v1/alerts?page=4611686018427387904", {}, 422),
    ("NUL in a query string", "GET", "/api/v1/incidents?status=a%00b", {}, 422),
    ("long status query", "GET", "/api/v1/alerts?status=" + "x" * 5000, {}, 422),
    ("NUL in an approval comment", "POST", "/api/v1/approvals/1/decision",
     {"json": {"approved": False, "comment": "a\u0000"}}, 422),
    ("5,000-digit number in a pydantic body", "POST", "/api/v1/approvals/1/decision",
     {"content": b'{"approved": true, "n": ' + b"9" * 5000 + b"}", "headers": {"content-type": "application/json"}},
     400),
    ("model version with a slash", "GET", "/api/v1/causal/models/..%2F..%2Fetc", {}, 404),
    ("model version too long", "GET", "/api/v1/causal/models/" + "v" * 500, {}, 422),
]


@pytest.fixture(params=["sqlite", "postgres"])
def api(request, platform_env, monkeypatch):
    from services.api.app import create_app
    from services.storage.migrate import upgrade

    def client_for(url: str):
        monkeypatch.setenv("AIOPS_DATABASE_URL", url)
        install_settings()
        upgrade(url)
        return TestClient(create_app(start_workers=False), raise_server_exceptions=False)

    if request.param == "sqlite":
        with client_for(platform_env["AIOPS_DATABASE_URL"]) as client:
            yield client, platform_env["AIOPS_DATABASE_URL"]
        return
    with fresh_postgres() as url, client_for(url) as client:
        yield client, url


def _alerts(url: str) -> int:
    from services.alerts.models import Alert
    from services.storage.base import session_scope

    with session_scope(url) as session:
        return session.scalar(select(func.count(Alert.id)))


def _problem(response, status: int, fragment: str = "") -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fragment in response.json()["detail"], response.json()["detail"][:500]


def test_bad_bodies_are_4xx_and_store_nothing(api):
    client, url = api
    assert client.post("/api/v1/alerts", json={"name": "Seed", "node": "n0"}).status_code == 202
    before, failures = _alerts(url), []
    for case, body, status, fragment in BAD_BODIES:
        response = client.post("/api/v1/alerts", content=body, headers={"content-type": "application/json"})
        try:
            _problem(response, status, fragment)
        except (AssertionError, KeyError, ValueError) as exc:
            failures.append(f"{case}: {exc}")
    assert not failures, "\n".join(failures)
    assert _alerts(url) == before


def test_bad_paths_queries_and_bodies_are_4xx(api):
    client, _ = api
    failures = []
    for case, method, path, kwargs, status in BAD_REQUESTS:
        response = client.request(method, path, **kwargs)
        if response.status_code != status or not response.headers["content-type"].startswith("application/problem"):
            failures.append(f"{case}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_edge_values_are_stored_as_sent(api):
    """Long title (name 200 + node 200), null label, numeric label, Alertmanager's zero time."""
    from services.alerts.models import Alert
    from services.incidents.models import Incident
    from services.storage.base import session_scope

    client, url = api
    long = client.post("/api/v1/alerts", json={"name": "N" * 200, "node": "x" * 200, "cluster": "c" * 200})
    assert long.status_code == 202, long.text
    kept = client.post("/api/v1/alerts", json={"name": "Labels", "node": "n2", "labels": {"team": None, "shard": 7},
                                               "startsAt": "0001-01-01T00:00:00Z"})
    assert kept.status_code == 202, kept.text
    with session_scope(url) as session:
        alert = session.get(Alert, kept.json()["new"][0])
        assert alert.labels == {"team": None, "shard": "7"}
        incident = session.get(Incident, long.json()["incidents_opened"][0])
        assert len(incident.title) == 300 and len(incident.group_key) <= 300


def test_oversized_body_is_refused_while_streaming(api):
    """413 from the declared length, and from the running count of a chunked body with no length."""
    client, url = api
    big = b'{"name": "x", "pad": "' + b"a" * (6 * 1024 * 1024) + b'"}'
    declared = client.post("/api/v1/alerts", content=big, headers={"content-type": "application/json"})
    _problem(declared, 413)
    streamed = _stream_to_app(chunk=65536, chunks=400)  # 25 MiB offered with no Content-Length
    assert streamed["status"] == 413 and streamed["type"].startswith("application/problem+json")
    assert streamed["pulled"] <= 5 * 16 + 2  # reading stopped at the first chunk past 5 MiB
    other = client.post("/api/v1/approvals/1/decision", content=big, headers={"content-type": "application/json"})
    assert other.status_code == 413
    assert _alerts(url) == 0


def _stream_to_app(*, chunk: int, chunks: int) -> dict:
    """Drive the ASGI app directly with a chunked body, counting how many chunks it pulled."""
    import asyncio

    from services.api.app import create_app

    app = create_app(start_workers=False)
    state = {"pulled": 0, "status": None, "type": ""}

    async def receive():
        state["pulled"] += 1
        return {"type": "http.request", "body": b"a" * chunk, "more_body": state["pulled"] < chunks}

    async def send(message):
        if message["type"] == "http.response.start":
            state["status"] = message["status"]
            state["type"] = dict(message["headers"]).get(b"content-type", b"").decode()

    scope = {"type": "http", "method": "POST", "path": "/api/v1/alerts", "raw_path": b"/api/v1/alerts",
             "query_string": b"", "headers": [(b"content-type", b"application/json")], "http_version": "1.1",
             "scheme": "http", "server": ("test", 80), "client": ("test", 1), "root_path": "", "app": app}
    asyncio.run(app(scope, receive, send))
    return state


def test_unexpected_errors_are_problem_json(platform_env, monkeypatch):
    from services.api.app import create_app

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("services.alerts.views.store_alerts", boom)
    with TestClient(create_app(start_workers=False), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/alerts", json={"name": "x"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "simulated" not in response.text  # the cause is logged, not shown


def test_a_value_the_database_refuses_is_a_422_not_a_500(platform_env, monkeypatch):
    """Whatever slips past validation and is refused by the column (range, NUL) is the client's input."""
    from sqlalchemy.exc import DataError

    from services.api.app import create_app

    def refuse(*args, **kwargs):
        raise DataError("INSERT INTO alerts ...", {}, Exception("value out of range for type integer"))

    monkeypatch.setattr("services.alerts.views.store_alerts", refuse)
    with TestClient(create_app(start_workers=False), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/alerts", json={"name": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "out of range" in response.json()["detail"]


def test_ingest_work_is_bounded_per_process(platform_env, monkeypatch):
    """More concurrent posts than ``ingest_concurrency`` wait on the event loop, not in the pool; all are stored.

    The bodies are over ``SMALL_BODY`` (a long extra field): smaller ones are parsed on the event loop and never
    take a threadpool slot, so only large ones exercise the bound."""
    import asyncio
    import threading
    import time

    import httpx

    import services.alerts.views as views
    from services.api.app import create_app

    install_settings(ingest_concurrency=2)
    running, peak, lock = [0], [0], threading.Lock()
    real = views._ingest

    def counted(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(views, "_ingest", counted)
    app = create_app(start_workers=False)

    async def post_many() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            replies = await asyncio.gather(*[client.post("/api/v1/alerts", json={"name": f"a{i}", "service": f"s{i}",
                                                                                "note": "x" * (views.SMALL_BODY + 1)})
                                             for i in range(12)])
        return [r.status_code for r in replies]

    with TestClient(app):  # the lifespan (migration check) runs once
        codes = asyncio.run(post_many())
    assert codes == [202] * 12
    assert peak[0] == 2
