"""Which events reach PagerDuty and a Slack thread, by route and kind, straight from `stage_event`.

A page only for a hand-over (escalated / rejected / blocked / approval_waiting), its resolve only
for a paged incident, and a silence that mutes the trigger never mutes the resolve (which would
leave a page open). Routes may send one service's pages to another PagerDuty service and its
thread to another channel; the routing key never appears in the outbox listing.
"""

from __future__ import annotations

import json

from services.notify.models import WebhookDelivery

KEY, DBA_KEY = "default-routing-key-0000000000000", "dba-routing-key-00000000000000000"


def _incident(session, *, service: str) -> int:
    from services.incidents.models import Incident

    incident = Incident(title=f"errors on {service}", status="open", severity="high", group_key=service,
                        service=service)
    session.add(incident)
    session.flush()
    return incident.id


def _stage(settings, incident_id: int, kind: str) -> list[WebhookDelivery]:
    from sqlalchemy import select

    from services.notify.service import stage_event
    from services.storage.base import session_scope

    with session_scope(settings.database_url) as session:
        ids = stage_event(session, settings, incident_id=incident_id, title="t", kind=kind, message=kind, data={})
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))).all() if ids else []
        session.expunge_all()
    return list(rows)


def test_pages_follow_kinds_routes_and_silences(platform_env):
    from services.notify import pagerduty
    from services.notify.service import create_silence
    from services.storage.base import session_scope
    from tests.conftest import install_settings

    settings = install_settings(
        pagerduty_routing_key=KEY, slack_bot_token="xoxb-x", slack_channel="C0ALL",
        notify_routes=[{"matchers": ['service="db"'], "pagerduty_routing_key": DBA_KEY, "slack_channel": "C0DBA"}])
    with session_scope(settings.database_url) as session:
        api, db = _incident(session, service="api"), _incident(session, service="db")

    opened = _stage(settings, api, "opened")
    assert [r.destination_kind for r in opened] == ["slack_api"], "an opening is no page"
    assert [r.destination_kind for r in _stage(settings, api, "resolved")] == ["slack_api"], \
        "no resolve for an incident never paged"
    diagnosed = _stage(settings, api, "diagnosed")
    assert [r.destination for r in diagnosed] == ["slack:C0ALL"], "steps go to the thread only"

    [page] = [r for r in _stage(settings, db, "escalated") if r.destination_kind == "pagerduty"]
    assert page.destination == pagerduty.destination(settings, DBA_KEY) and DBA_KEY not in page.destination
    body = json.loads(page.body)
    assert (body["routing_key"], body["event_action"], body["dedup_key"]) == (DBA_KEY, "trigger", f"aiops-incident-{db}")
    assert body["payload"]["severity"] == "error" and body["payload"]["component"] == "db"
    assert [r.destination for r in _stage(settings, db, "diagnosed")] == ["slack:C0DBA"]

    # a maintenance window mutes the next page, not the resolve of the page already sent
    with session_scope(settings.database_url) as session:
        create_silence(session, matchers=['service="db"'], duration_s=3600, starts_at=None, comment="", user="t")
    assert all(r.destination_kind != "pagerduty" for r in _stage(settings, db, "rejected")), "muted rows are not sent"
    from sqlalchemy import select

    with session_scope(settings.database_url) as session:
        muted = session.scalars(select(WebhookDelivery.status).where(
            WebhookDelivery.kind == "rejected", WebhookDelivery.destination_kind == "pagerduty")).all()
    assert muted == ["silenced"], "the muted page is kept (listed, redeliverable)"
    [resolve] = [r for r in _stage(settings, db, "resolved") if r.destination_kind == "pagerduty"]
    assert json.loads(resolve.body) == {"routing_key": DBA_KEY, "event_action": "resolve",
                                        "dedup_key": f"aiops-incident-{db}"}
