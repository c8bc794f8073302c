"""An alert still firing after its incident was resolved opens a new incident (PagerDuty's convention),
once the grace for re-sends in flight has passed; on SQLite and PostgreSQL, through the real API, and
once with concurrent posts (as two API processes make them)."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.alerts.models import Alert, NormalizedAlert
from services.incidents.models import Incident, TimelineEvent
from services.storage.base import session_scope, utcnow
from tests.conftest import install_settings

GRACE_S = 300  # the setting's default (Alertmanager's group_interval)
ALERT = {"name": "NodeFilesystemDeviceError", "node": "node-3", "severity": "critical"}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, platform_env, monkeypatch):
    """The platform database (SQLite from ``platform_env``, or a throwaway PostgreSQL one), migrated."""
    from services.storage.migrate import upgrade
    from tests.platform.pgdb import fresh_postgres

    where = (fresh_postgres("aiops_recur") if request.param == "postgres"
             else nullcontext(platform_env["AIOPS_DATABASE_URL"]))
    with where as database_url:
        monkeypatch.setenv("AIOPS_DATABASE_URL", database_url)
        install_settings(dispatch_in_api=False)  # the test drains the outbox itself, to count what is sent
        upgrade(database_url)
        yield database_url


@pytest.fixture
def client(url):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        yield client


def post(client: TestClient, **changes) -> dict:
    response = client.post("/api/v1/alerts", json={**ALERT, **changes})
    assert response.status_code == 202, response.text
    return response.json()


def kinds(client: TestClient, incident_id: int) -> list[str]:
    return [e["kind"] for e in client.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]]


def events(url: str, kind: str) -> list[TimelineEvent]:
    with session_scope(url) as session:
        return list(session.scalars(select(TimelineEvent).where(TimelineEvent.kind == kind)))


def incident_count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count(Incident.id)))


def resolved_ago(url: str, incident_id: int, seconds: float) -> None:
    """Move the incident's resolution into the past, instead of waiting for the grace to pass."""
    with session_scope(url) as session:
        incident = session.get(Incident, incident_id)
        incident.resolved_at = incident.resolved_at - timedelta(seconds=seconds)


def drain() -> list[int]:
    from services.incidents.dispatch import drain
    from services.worker import runtime

    return drain(runtime.current().settings)


def test_a_repeat_after_the_grace_opens_a_new_incident_once(client, url):
    first = post(client)
    (old,) = first["incidents_opened"]
    assert drain() == [old]
    assert client.post(f"/api/v1/incidents/{old}/resolve", json={"reason": "disk swapped"}).status_code == 200

    in_flight = post(client)  # Alertmanager's re-send crossing the resolution: a repeat, nothing else
    assert in_flight["duplicates"] == first["new"] and not in_flight["new"] and not in_flight["incidents_opened"]
    assert incident_count(url) == 1 and drain() == []
    assert "recurred" not in kinds(client, old)

    resolved_ago(url, old, GRACE_S + 1)
    recurred = post(client)
    (new,) = recurred["incidents_opened"]
    assert new != old and recurred["new"] and recurred["new"] != first["new"] and not recurred["duplicates"]
    assert incident_count(url) == 2
    assert client.get(f"/api/v1/incidents/{old}").json()["status"] == "resolved"  # not reopened
    (on_old,) = events(url, "recurred")
    (on_new,) = events(url, "recurrence")
    assert on_old.incident_id == old and f"recurred as #{new}" in on_old.message
    assert on_new.incident_id == new and f"after #{old} was resolved" in on_new.message
    assert kinds(client, new)[:2] == ["opened", "recurrence"]
    with session_scope(url) as session:
        rows = {a.id: (a.status, a.incident_id) for a in session.scalars(select(Alert))}
    assert rows == {first["new"][0]: ("recurred", old), recurred["new"][0]: ("firing", new)}

    assert drain() == [new] and drain() == []  # the observer gets the new incident, once
    again = post(client)  # the next re-send repeats the new incident's alert
    assert again["duplicates"] == recurred["new"] and not again["incidents_opened"]
    assert incident_count(url) == 2 and len(events(url, "recurred")) == 1


def test_a_resolved_notice_after_the_close_records_the_end_and_opens_nothing(client, url):
    first = post(client)
    (old,) = first["incidents_opened"]
    assert client.post(f"/api/v1/incidents/{old}/resolve", json={"reason": "fixed"}).status_code == 200
    resolved_ago(url, old, GRACE_S + 1)
    notice = post(client, status="resolved", endsAt="2026-12-01T04:00:00Z")
    assert notice["resolved"] == first["new"] and not notice["new"] and not notice["incidents_opened"]
    assert incident_count(url) == 1 and not events(url, "recurred")
    with session_scope(url) as session:
        alert = session.get(Alert, first["new"][0])
        assert alert.status == "resolved" and alert.ends_at is not None and alert.incident_id == old


def test_an_escalated_incident_keeps_its_firing_alert(client, url):
    """Escalated is a person's, not a resolution: the re-send stays a repeat however late."""
    first = post(client)
    (old,) = first["incidents_opened"]
    with session_scope(url) as session:
        incident = session.get(Incident, old)
        incident.status = "escalated"
    again = post(client)
    assert again["duplicates"] == first["new"] and incident_count(url) == 1


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_re_sends_recur_once(url, round_):
    """The same late re-send posted at once through separate connections (two API processes):
    one new incident, one recurrence on each timeline, one firing row counting both."""
    from services.alerts.service import store_alerts

    incoming = NormalizedAlert(source="webhook", **ALERT)
    with session_scope(url) as session:
        (old,) = store_alerts(session, [incoming]).incidents_opened
    with session_scope(url) as session:
        incident = session.get(Incident, old)
        incident.status, incident.resolved_at = "resolved", utcnow() - timedelta(seconds=1)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=10)
            with session_scope(url) as session:
                store_alerts(session, [incoming], recurrence_grace_s=0)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert incident_count(url) == 2
    assert len(events(url, "recurred")) == 1 and len(events(url, "recurrence")) == 1
    with session_scope(url) as session:
        firing = session.scalars(select(Alert).where(Alert.status == "firing")).all()
        assert len(firing) == 1 and firing[0].incident_id != old and firing[0].count == 3
        outbox = session.scalars(select(Alert.incident_id).where(Alert.dispatched.is_(False))).all()
    assert sorted(outbox) == [old, firing[0].incident_id]  # the new incident waits for the observer once
