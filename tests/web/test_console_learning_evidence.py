"""The console's second round: the time filter, the incident's plots / topology / context lines, the
learning pages, webhook dead letters with redelivery, the theme toggle and offline ReDoc.

Browser tests run in real Chromium (the fixtures of ``test_console``); the drawing geometry and
the time parsing are checked without a browser.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.web.test_console import AXE, browser, page, quiet_server, seed, shot  # noqa: F401 - fixtures

SPLIT = 1_800_000_000.0
EDGES = [["frontend", "checkout"], ["checkout", "payments"], ["admin", "checkout"], ["search", "catalog"],
         ["payments", "ledger"]]


def _series(component: str, metric: str, before: float, after: float) -> dict:
    points = [[SPLIT - 600 + 30 * i, before if SPLIT - 600 + 30 * i < SPLIT else after] for i in range(30)]
    return {"component": component, "metric": metric, "before": before, "after": after, "at": SPLIT, "z": 12.5,
            "signal": "errors", "points": points}


def seed_observed(url: str) -> int:
    """One diagnosed incident with what the observer records: context, topology and series."""
    from services.incidents.models import Hypothesis, Incident, TimelineEvent
    from services.storage.base import session_scope, utcnow

    context = "\n".join([
        "[context] 40 lines, 3 templates, 2 error/warn templates", "## errors and warnings",
        "x12 [t0..t1] payments: ERROR ledger write timeout after 5000ms", "  ids: 9f2 a81",
        "x1 metric anomaly: error_rate on payments moved from 0.01 to 0.3", "x3 [t0..t1] frontend: GET / 200"])
    with session_scope(url) as session:
        incident = Incident(title="PaymentsErrorRate on payments", status="mitigating", severity="high",
                            group_key="pay", service="payments", root_cause="bad_deploy")
        session.add(incident)
        session.flush()
        session.add(Hypothesis(incident_id=incident.id, root_cause="bad_deploy", component="payments",
                               component_kind="service", confidence=0.7, rank=0, evidence=[
                                   {"kind": "metric", "component": "payments", "metric": "error_rate", "before": 0.01,
                                    "after": 0.3, "z": 12.5, "detail": "error_rate on payments moved 0.01 -> 0.3"},
                                   {"kind": "metric", "component": "payments", "metric": "not_recorded",
                                    "detail": "a metric whose series was not kept"}]))
        session.add(TimelineEvent(incident_id=incident.id, kind="observed", actor="observer", message="gathered 6",
                                  data={"context": context, "split_at": SPLIT,
                                        "series": [_series("payments", "error_rate", 0.01, 0.3),
                                                   _series("checkout", "latency_p99_ms", 120, 900)],
                                        "topology": {"edges": EDGES, "placement": {"payments": "node-3"},
                                                     "alerted": ["payments"],
                                                     "components": {"node-3": {"kind": "node", "hops": 1}}}}))
        session.add(TimelineEvent(incident_id=incident.id, kind="planned", actor="actor", message="plan: rollback",
                                  at=utcnow() + timedelta(seconds=1),
                                  data={"blast": {"dependents": ["admin", "checkout", "frontend"], "risk": "high",
                                                  "raised_by": ["3 dependents (>= 3)"], "capacity": None}}))
    return incident.id


# --- without a browser --------------------------------------------------------------------------


def test_plot_geometry_marks_the_fault_window_and_the_change_point():
    from services.console.evidence import PLOT_H, PLOT_W, plot

    p = plot(_series("payments", "error_rate", 0.01, 0.3), split_at=SPLIT)
    xs = [float(pair.split(",")[0]) for pair in p["line"].split()]
    ys = [float(pair.split(",")[1]) for pair in p["line"].split()]
    assert len(xs) == 30 and xs == sorted(xs) and 0 <= min(xs) and max(xs) <= PLOT_W
    assert min(ys) < max(ys) and 0 <= min(ys) and max(ys) <= PLOT_H
    assert 0 < p["split_x"] < PLOT_W and p["change_x"] == p["split_x"]  # the change is at the split here
    assert p["after_y"] < p["before_y"]  # higher value, higher on the plot (smaller y)
    assert plot({"points": [[1, 2]]}, split_at=None) is None  # one point is no line
    outside = plot(_series("payments", "error_rate", 0.01, 0.3), split_at=SPLIT + 10_000)
    assert outside["split_x"] is None  # a split after the window is not drawn at the edge


def test_topology_blast_radius_follows_callers_and_hosted_services():
    from services.console.evidence import topology_view

    view = topology_view({"edges": EDGES, "placement": {"payments": "node-3"}}, root="payments")
    assert view["blast"] == ["admin", "checkout", "frontend"]  # callers, directly or through checkout
    roles = {b["name"]: b["role"] for b in view["boxes"]}
    assert roles["payments"] == "root" and roles["ledger"] == "other" and roles["node-3"] == "other"
    assert "search" not in roles  # not connected to payments
    node = topology_view({"edges": EDGES, "placement": {"payments": "node-3"}}, root="node-3", root_kind="node")
    assert set(node["blast"]) == {"payments", "checkout", "frontend", "admin"}  # what runs on it, and their callers
    assert topology_view({"edges": EDGES}, root="unknown") is None


def test_context_lines_by_kind_and_component():
    from services.console.evidence import log_lines

    text = "[context] 3 lines\n## errors\nx2 payments: ERROR timeout\n  ids: 1 2\nx1 metric anomaly: cpu on web\n"
    kinds = [line["kind"] for line in log_lines(text)]
    assert kinds == ["header", "header", "log", "ids", "metric"]
    assert [line["text"] for line in log_lines(text, component="payments")] == ["x2 payments: ERROR timeout"]


def test_time_bounds_parse_relative_and_iso_and_reject_the_rest():
    from datetime import UTC, datetime

    from services.errors import Invalid
    from services.incidents.service import parse_when

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_when("24h", now=now) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_when("90m", now=now) == datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    assert parse_when("2w", now=now) == datetime(2026, 11, 17, 12, 0, tzinfo=UTC)
    assert parse_when("2026-11-30T08:00", now=now) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert parse_when("2026-11-30T08:00+01:00", now=now) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert parse_when("", now=now) is None
    for bad in ("yesterday", "24x", "-1h"):
        with pytest.raises(Invalid, match="relative"):
            parse_when(bad, now=now)


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        yield client


def test_time_filter_and_literal_search_on_the_api_and_the_console(client, platform_env):
    from services.incidents.models import Incident
    from services.storage.base import session_scope, utcnow

    ids = seed(platform_env["AIOPS_DATABASE_URL"], count=4)  # opened 4, 3, 2 and 1 minutes ago
    with session_scope(platform_env["AIOPS_DATABASE_URL"]) as session:
        session.get(Incident, ids[0]).opened_at = utcnow() - timedelta(days=3)
        session.get(Incident, ids[1]).title = "node_exporter down on 100%-busy host"
    recent = client.get("/api/v1/incidents", params={"since": "1d"}).json()
    assert sorted(i["id"] for i in recent["items"]) == ids[1:]
    older = client.get("/api/v1/incidents", params={"until": "1d"}).json()
    assert [i["id"] for i in older["items"]] == [ids[0]]
    assert client.get("/api/v1/incidents", params={"since": "last tuesday"}).status_code == 422
    # _ and % are literal, not LIKE wildcards
    assert [i["id"] for i in client.get("/api/v1/incidents", params={"q": "node_exporter"}).json()["items"]] == [ids[1]]
    assert [i["id"] for i in client.get("/api/v1/incidents", params={"q": "100%-"}).json()["items"]] == [ids[1]]
    assert client.get("/api/v1/incidents", params={"q": "node%exporter"}).json()["total"] == 0
    html = client.get("/incidents", params={"since": "1d"}).text
    assert "3 incidents" in html and "opened since" in html
    assert client.get("/incidents", params={"since": "soon"}).status_code == 422


def test_redeliver_a_dead_letter_from_the_console_is_audited(client, platform_env):
    from sqlalchemy import select

    from services.audit.models import AuditEntry
    from services.notify.models import WebhookDelivery
    from services.storage.base import session_scope

    url = platform_env["AIOPS_DATABASE_URL"]
    with session_scope(url) as session:
        dead = WebhookDelivery(event_id="e1", kind="incident.opened", incident_id=None, body="{}", status="dead",
                               attempts=6, destination="https://hooks.example.com/services/T0/B0/secret",
                               last_status_code=410, last_error="gone")
        session.add(dead)
        session.flush()
        dead_id = dead.id
    listing = client.get("/webhooks").text
    assert "https://hooks.example.com/services/…" in listing and "secret" not in listing  # the path's secret stays hidden
    assert "HTTP 410" in listing
    assert client.post(f"/webhooks/{dead_id}/redeliver").status_code == 403  # no CSRF value
    csrf = client.cookies["aiops_csrf"]
    done = client.post(f"/webhooks/{dead_id}/redeliver", headers={"X-CSRF-Token": csrf}, data={"status": "dead"})
    assert done.status_code == 200 and "queued again" in done.text and "No dead letters" in done.text
    with session_scope(url) as session:
        assert session.get(WebhookDelivery, dead_id).status in {"pending", "delivered", "dead"}
        assert session.get(WebhookDelivery, dead_id).attempts <= 1  # a fresh budget
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhooks.redeliver")).one()
        assert entry.subject == str(dead_id) and entry.data["from"] == "console"
    again = client.post(f"/webhooks/{dead_id}/redeliver", headers={"X-CSRF-Token": csrf})
    assert again.status_code in {200, 409}  # pending: already on its way (409); a fast worker may have finished it


# --- in Chromium --------------------------------------------------------------------------------


def test_incident_page_plots_topology_blast_radius_and_context(quiet_server, page, platform_env):  # noqa: F811
    incident = seed_observed(platform_env["AIOPS_DATABASE_URL"])
    page.goto(f"{quiet_server}/incidents/{incident}")
    # the metric item with a kept series has its plot; the one without has none
    evidence = page.locator(".hypothesis .evidence li")
    assert evidence.nth(0).locator("svg polyline.series").count() == 1
    assert evidence.nth(1).locator("svg").count() == 0
    assert page.locator("#h-metrics + p + .plots figure, section[aria-labelledby=h-metrics] figure").count() == 2
    label = evidence.nth(0).locator("svg").get_attribute("aria-label")
    assert "error_rate on payments" in label and "0.01 before" in label
    # topology: payments is the root; its callers (directly or through checkout) are the blast radius
    assert page.locator(".topology .box.root text").text_content() == "payments"
    assert sorted(page.locator(".topology .box.blast text").all_text_contents()) == ["admin", "checkout", "frontend"]
    radius = page.inner_text("#blast-radius")
    assert "3 component(s) depend on it" in radius and "raised the risk to high" in radius
    assert "search" not in page.locator(".topology svg").text_content()
    # context lines: those naming the component under the hypothesis, all of them behind a disclosure
    assert page.locator(".hypothesis ol.logs li").all_inner_texts() == [
        "x12 [t0..t1] payments: ERROR ledger write timeout after 5000ms",
        "x1 metric anomaly: error_rate on payments moved from 0.01 to 0.3"]
    assert not page.is_visible("#context-lines")
    page.click("section[aria-labelledby=h-context] summary")
    assert page.locator("#context-lines li").count() == 6
    shot(page, "console-evidence")


def test_time_presets_filter_the_list_in_place(quiet_server, page, platform_env):  # noqa: F811
    from services.incidents.models import Incident
    from services.storage.base import session_scope, utcnow

    ids = seed(platform_env["AIOPS_DATABASE_URL"], count=3)
    with session_scope(platform_env["AIOPS_DATABASE_URL"]) as session:
        session.get(Incident, ids[0]).opened_at = utcnow() - timedelta(hours=3)
    page.goto(f"{quiet_server}/incidents")
    assert "3 incidents" in page.inner_text("#page-info")
    page.click("a[data-since='1h']")
    page.wait_for_selector("#page-info >> text=2 incidents")
    assert "since=1h" in page.url and page.input_value("input[name=since]") == "1h"
    page.click("a[data-since='6h']")
    page.wait_for_selector("#page-info >> text=3 incidents")
    page.fill("input[name=since]", "2w")
    page.fill("input[name=until]", "2h")
    page.press("input[name=until]", "Enter")
    page.wait_for_selector("#page-info >> text=1 incident ·")
    assert page.locator("#incident-table tbody tr").first.get_attribute("data-id") == str(ids[0])
    shot(page, "console-time-filter")


def test_learning_pages_list_or_say_why_empty(quiet_server, page, platform_env):  # noqa: F811
    from memory.models import EpisodeRow, SemanticEntryRow
    from services.storage.base import session_scope

    for path, empty in [("/learning/episodes", "No episodes yet"), ("/learning/knowledge", "No knowledge yet"),
                        ("/learning/models", "No model trained yet")]:
        page.goto(quiet_server + path)
        assert empty in page.inner_text("main"), path
    [first] = seed(platform_env["AIOPS_DATABASE_URL"])
    with session_scope(platform_env["AIOPS_DATABASE_URL"]) as session:
        session.add(EpisodeRow(id="ep1", incident_id=str(first), title="DiskErrors on node-7", root_cause="disk_failure",
                               outcome="resolved", time_to_recover_s=312.0, document="",
                               actions=[{"action": "send_to_repair", "target": "node-7", "succeeded": True}],
                               hypotheses=[{"root_cause": "disk_failure"}]))
        session.add(SemanticEntryRow(id="k1", signature="DiskErrors I/O error nvme", signature_key="s1",
                                     root_cause="disk_failure", mitigation="send_to_repair", success_count=3,
                                     failure_count=1, status="promoted"))
    page.goto(f"{quiet_server}/learning/episodes")
    shot(page, "console-episodes")
    row = page.locator("#episode-table tbody tr").first
    assert "send_to_repair on node-7" in row.inner_text() and "5.2 min" in row.inner_text()
    row.locator(f"a[href='/incidents/{first}']").click()
    page.wait_for_url(f"{quiet_server}/incidents/{first}")
    page.goto(f"{quiet_server}/learning/knowledge?status=promoted")
    assert "3 of 4 (75%)" in page.inner_text("#knowledge-table")
    shot(page, "console-knowledge")
    page.goto(f"{quiet_server}/learning/knowledge?status=demoted")
    assert "No knowledge matches" in page.inner_text("#knowledge-table")


def test_dead_letter_redelivered_with_a_click(quiet_server, page, platform_env):  # noqa: F811
    from services.notify.models import WebhookDelivery
    from services.storage.base import session_scope

    with session_scope(platform_env["AIOPS_DATABASE_URL"]) as session:
        session.add(WebhookDelivery(event_id="e9", kind="incident.resolved", body="{}", status="dead", attempts=6,
                                    destination="http://127.0.0.1:9/hook", last_error="connection refused"))
    page.goto(f"{quiet_server}/webhooks")
    assert "dead (1)" in page.inner_text("select[name=status]")
    shot(page, "console-webhooks")
    page.click("#delivery-table button:has-text('Redeliver')")
    page.wait_for_selector("#redelivered")
    assert "No dead letters" in page.inner_text("#delivery-table") or "dead" in page.inner_text("#delivery-table")
    page.goto(f"{quiet_server}/audit?action=webhooks.redeliver")
    assert page.locator("#audit-table tbody tr").count() == 1


def test_theme_toggle_is_kept_across_pages(quiet_server, page, platform_env):  # noqa: F811
    page.emulate_media(color_scheme="dark")
    page.goto(f"{quiet_server}/incidents")
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light_bg != dark_bg
    page.goto(f"{quiet_server}/drift")  # the server renders the choice from the cookie
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == light_bg
    page.click("#theme-toggle")  # light -> dark
    page.click("#theme-toggle")  # dark -> system
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") is None
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark_bg


def test_redoc_works_offline(quiet_server, page):  # noqa: F811
    outside = []

    def only_local(route):
        if route.request.url.startswith(quiet_server):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_local)
    page.goto(f"{quiet_server}/redoc")
    page.wait_for_selector("h1:has-text('AIOps platform')", timeout=30_000)
    assert "/api/v1/incidents" in page.inner_text("body")
    assert all("cdn.redoc.ly" in url for url in outside), outside  # only ReDoc's own logo image, hidden on error


def test_new_pages_have_no_serious_accessibility_violations(quiet_server, page, platform_env):  # noqa: F811
    incident = seed_observed(platform_env["AIOPS_DATABASE_URL"])
    found = {}
    for scheme in ("light", "dark"):
        for path in (f"/incidents/{incident}", "/incidents?since=24h", "/learning/episodes", "/learning/knowledge",
                     "/learning/models", "/webhooks"):
            page.emulate_media(color_scheme=scheme)
            page.goto(quiet_server + path)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            bad = [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}" for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]
            if bad:
                found[f"{path} ({scheme})"] = bad
    assert not found, found


def test_new_pages_fit_a_phone(quiet_server, browser, platform_env):  # noqa: F811
    incident = seed_observed(platform_env["AIOPS_DATABASE_URL"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        for path in (f"/incidents/{incident}", "/learning/episodes", "/learning/knowledge", "/learning/models",
                     "/webhooks"):
            phone.goto(quiet_server + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            wide = phone.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 390 && !e.closest('.scroll-x svg'))"
                                  ".slice(0, 5).map(e => e.tagName + '.' + e.getAttribute('class') + '#' + Math.round(e.getBoundingClientRect().right))")
            assert width <= 390, f"{path} is {width} px wide at 390 px: {wide}"
        phone.goto(f"{quiet_server}/incidents/{incident}")
        # the topology scrolls inside its own box instead of widening the page
        assert phone.evaluate("document.querySelector('.topology .scroll-x').scrollWidth") > 390
    finally:
        context.close()
