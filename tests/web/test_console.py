"""The console in a real browser (Debian chromium driven by Playwright).

Most tests seed the database directly and run the app without workers, so they are fast and exact;
``test_live_incident_to_approval`` runs the agents end to end and watches the page update by
server-sent events. Set ``AIOPS_CONSOLE_SCREENSHOTS=docs/screenshots`` to write the pages' screenshots.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import ec2_node, free_port, install_settings, wait_for

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("AIOPS_CONSOLE_SCREENSHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def serve(app) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, message="uvicorn started")
    return f"http://127.0.0.1:{port}", srv, thread


@pytest.fixture
def server(platform_env):
    from services.api.app import create_app

    base, srv, thread = serve(create_app())
    yield base
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def quiet_server(platform_env):
    """The app without workers: nothing changes the seeded rows behind the test's back.

    The process's embedded worker outlives the test that started it; stopped here, or it would take
    the seeded incidents the API's dispatcher hands to the queue and diagnose them anew.
    """
    from services.api.app import create_app
    from services.worker.embedded import stop_embedded_worker

    stop_embedded_worker()
    base, srv, thread = serve(create_app(start_workers=False))
    yield base
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris",
                                  accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def seed(url: str, *, count: int = 1) -> list[int]:
    """Incidents with alerts, hypotheses (evidence items), a timeline and one high-risk pending approval."""
    from services.actions.models import Approval
    from services.alerts.models import Alert
    from services.incidents.models import Hypothesis, Incident, TimelineEvent
    from services.storage.base import session_scope, utcnow

    ids = []
    with session_scope(url) as session:
        for n in range(count):
            first = n == 0
            incident = Incident(
                title="DiskErrors on node-7 with a long title to wrap on phones" if first else f"HighLatency on checkout-{n}",
                status="awaiting_approval" if first else ("resolved" if n % 3 == 0 else "diagnosing"),
                severity="critical" if first else ("warning" if n % 2 else "high"),
                group_key=f"g{n}", service=None if first else "checkout", node="node-7" if first else f"node-{n}",
                root_cause="disk_failure" if first else None, summary="I/O errors on /dev/nvme1n1; SMART failing",
                opened_at=utcnow() - timedelta(minutes=count - n))
            session.add(incident)
            session.flush()
            ids.append(incident.id)
            if not first:
                continue
            session.add(Alert(fingerprint="f" * 64, source="json", name="DiskErrors", severity="critical",
                              node="node-7", summary="I/O error on /dev/nvme1n1", incident_id=incident.id,
                              annotations={"runbook_url": "https://runbooks.example/disk"}))
            session.add(Hypothesis(incident_id=incident.id, root_cause="disk_failure", component="node-7",
                                   confidence=0.82, rank=0, evidence=[
                                       {"kind": "log", "component": "node-7", "detail": "blk_update_request: I/O error, dev nvme1n1"},
                                       "SMART overall-health: FAILED"]))
            session.add(Hypothesis(incident_id=incident.id, root_cause="noisy_neighbour", component="node-7",
                                   confidence=0.18, rank=1, evidence=[]))
            session.add(TimelineEvent(incident_id=incident.id, kind="opened", actor="observer",
                                      message="incident opened from alert DiskErrors"))
            session.add(TimelineEvent(incident_id=incident.id, kind="approval_requested", actor="actor",
                                      message="approval needed: send_to_repair on node-7 (risk high)"))
            session.add(Approval(incident_id=incident.id, action_kind="send_to_repair", target="node-7", risk="high",
                                 reason="hardware fault: the disk fails SMART"))
    return ids


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_deep_links_render_the_incident(quiet_server, page, platform_env):
    [first] = seed(platform_env["AIOPS_DATABASE_URL"])
    page.goto(f"{quiet_server}/#incidents/{first}")  # what Slack messages link to
    page.wait_for_url(f"{quiet_server}/incidents/{first}")
    assert page.inner_text("h1").startswith(f"#{first} DiskErrors")
    page.goto(f"{quiet_server}/#drifts")
    page.wait_for_url(f"{quiet_server}/drift")
    assert page.inner_text("h1") == "Drift review"
    assert page.goto(f"{quiet_server}/incidents/999").status == 404


def test_phone_width_has_no_horizontal_scroll(quiet_server, browser, platform_env):
    ids = seed(platform_env["AIOPS_DATABASE_URL"], count=3)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        for path in ("/incidents", f"/incidents/{ids[0]}", "/approvals", "/drift", "/login"):
            phone.goto(quiet_server + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide at 390 px"
        phone.goto(f"{quiet_server}/incidents")
        shot(phone, "console-phone")
    finally:
        context.close()


def test_docs_work_offline(quiet_server, page):
    outside = []

    def only_local(route):
        if route.request.url.startswith(quiet_server):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_local)
    page.goto(f"{quiet_server}/docs")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)
    assert "/api/v1/incidents/{incident_id}/ack" in page.inner_text(".swagger-ui")
    assert outside == []


def test_keyboard_only_path_opens_an_incident(quiet_server, page, platform_env):
    ids = seed(platform_env["AIOPS_DATABASE_URL"], count=3)
    page.goto(f"{quiet_server}/incidents")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('row-link')"):
            break
    else:
        pytest.fail("no incident row was reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/incidents/\d+$"))
    assert int(page.url.rsplit("/", 1)[1]) in ids


def test_find_own_comment_resolve_reopen_and_export(quiet_server, page, platform_env):
    from services.audit.models import AuditEntry
    from services.storage.base import session_scope

    url = platform_env["AIOPS_DATABASE_URL"]
    ids = seed(url, count=30)
    page.goto(f"{quiet_server}/incidents")
    assert "30 incidents · page 1 of 2" in page.inner_text("#page-info")
    page.click("a[rel=next]")
    page.wait_for_selector("#page-info >> text=page 2 of 2")
    assert "page=2" in page.url  # the page is in the address: reload or share it
    page.select_option("select[name=status]", "awaiting_approval")
    page.wait_for_selector("#page-info >> text=1 incident ·")
    assert page.locator("#incident-table tbody tr").count() == 1
    page.select_option("select[name=status]", "")
    page.fill("input[name=q]", "checkout-2")
    page.wait_for_function("document.querySelector('#page-info').textContent.includes('incidents ·') && "
                           "[...document.querySelectorAll('#incident-table tbody tr')].every(r => r.textContent.includes('checkout-2'))")
    page.fill("input[name=q]", "")
    page.select_option("select[name=severity]", "critical")
    page.wait_for_selector("#page-info >> text=1 incident ·")
    page.select_option("select[name=severity]", "")
    page.select_option("select[name=sort]", "oldest")
    page.wait_for_function(f"document.querySelector('#incident-table tbody tr').dataset.id === '{ids[0]}'")
    stamp = page.inner_text("#incident-table tbody tr time")
    assert re.search(r"\d{4}", stamp) and re.search(r"GMT|CET|CEST|UTC", stamp), stamp  # a date and its zone
    shot(page, "console-incidents")

    page.click(f"#incident-table tr[data-id='{ids[0]}'] a.row-link")
    page.wait_for_url(f"{quiet_server}/incidents/{ids[0]}")
    body = page.inner_text("#live")
    assert "blk_update_request: I/O error, dev nvme1n1" in body and "SMART overall-health: FAILED" in body
    assert "I/O error on /dev/nvme1n1" in body and page.locator("a[href='https://runbooks.example/disk']").count() == 1
    page.click("button.ack")
    page.wait_for_selector("#live >> text=acknowledged by operator")
    page.fill("input[name=assignee]", "alice")
    page.click("form[hx-post$='/assign'] button")
    page.wait_for_selector("#owner >> text=alice")
    page.fill("#comment-text", "swapping the disk tonight")
    page.click("form.comment button")
    page.wait_for_selector(".timeline >> text=swapping the disk tonight")
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("form[hx-post$='/resolve'] input[name=reason]", "disk replaced by hand")
    page.click("form[hx-post$='/resolve'] button")
    page.wait_for_selector(".facts .status-resolved")
    page.fill("form[hx-post$='/reopen'] input[name=reason]", "errors came back")
    page.click("form[hx-post$='/reopen'] button")
    page.wait_for_selector(".timeline >> text=reopened by operator: errors came back")
    shot(page, "console-incident")
    with page.expect_download() as download:
        page.click("#postmortem")
    markdown = Path(download.value.path()).read_text()
    assert markdown.startswith(f"# Postmortem: incident #{ids[0]}")
    assert "swapping the disk tonight" in markdown and "disk replaced by hand" in markdown
    assert "send_to_repair on node-7 (risk high): cancelled" in markdown  # resolving cancelled the approval
    with session_scope(url) as session:
        audited = [a for (a,) in session.query(AuditEntry.action).filter(AuditEntry.subject == f"incident:{ids[0]}")]
    assert audited == ["incident.acknowledged", "incident.assigned", "incident.comment", "incident.resolved",
                       "incident.reopened"]
    page.click("nav >> text=Audit")
    page.fill("input[name=subject]", f"incident:{ids[0]}")
    page.click("form.filters button")
    page.wait_for_selector("#page-info >> text=5 entries")
    assert "incident.resolved" in page.inner_text("#audit-table") and "reason=disk replaced by hand" in page.inner_text("#audit-table")
    shot(page, "console-audit")


def test_a_live_refresh_never_wipes_what_the_reader_is_typing(quiet_server, page, platform_env):
    """A change event's refresh that was already on its way when the reader started typing is not swapped in.

    The refresh's answer is held back until the reader has typed a reason; without the check at swap time
    the form came back empty and the click on Resolve was refused by the browser (a CI flake).
    """
    import httpx

    incident = seed(platform_env["AIOPS_DATABASE_URL"])[0]
    held, holding = [], [True]

    def hold_refresh(route):
        if holding[0] and route.request.method == "GET" and route.request.headers.get("x-live-refresh"):
            held.append(route)
        else:
            route.continue_()

    page.goto(f"{quiet_server}/incidents/{incident}")
    page.route(re.compile(rf"/incidents/{incident}$"), hold_refresh)
    for n in range(20):  # the first change after the event stream has read its starting version
        httpx.post(f"{quiet_server}/api/v1/incidents/{incident}/comments", json={"text": f"from the API {n}"}).raise_for_status()
        page.wait_for_timeout(1500)
        if held:
            break
    assert held, "no live refresh was asked for after a change"
    reason = "form[hx-post$='/resolve'] input[name=reason]"
    page.fill(reason, "disk replaced by hand")  # the reader types while the refresh is on its way
    holding[0] = False
    with page.expect_response(lambda r: r.request.headers.get("x-live-refresh") is not None):
        held[0].continue_()
    page.wait_for_timeout(300)  # the swap (if any) happens right after the response
    assert page.input_value(reason) == "disk replaced by hand"
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("form[hx-post$='/resolve'] button")
    page.wait_for_selector(".facts .status-resolved")
    assert "from the API 0" in page.inner_text(".timeline")  # the page caught up all the same


def test_sign_in_then_approve_high_risk_with_reason(platform_env, monkeypatch, browser):
    from services.actions.models import Approval
    from services.api.app import create_app
    from services.audit.models import AuditEntry
    from services.auth.service import create_token
    from services.storage.base import session_scope

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    install_settings()
    url = platform_env["AIOPS_DATABASE_URL"]
    [first] = seed(url)
    viewer = create_token(url, user="vera", role="viewer")
    approver = create_token(url, user="ana", role="approver")
    base, srv, thread = serve(create_app(start_workers=False))
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{base}/incidents/{first}")
        page.wait_for_url(re.compile(r"/login\?next="))  # no session: sign in first, then back here
        page.fill("#token", "aiops_not-a-token")
        page.click("form.login button")
        page.wait_for_selector(".error >> text=invalid API token")
        page.fill("#token", viewer)
        page.click("form.login button")
        page.wait_for_url(f"{base}/incidents/{first}")
        assert page.locator("form.approval button.approve").count() == 0  # a viewer sees no decision controls
        assert "An approver decides this." in page.inner_text("form.approval")
        page.click("text=Sign out")
        page.wait_for_url(re.compile(r"/login"))
        page.goto(f"{base}/login?next=/incidents/{first}")
        page.fill("#token", approver)
        page.click("form.login button")
        page.wait_for_url(f"{base}/incidents/{first}")
        assert "ana (approver)" in page.inner_text("header")
        cookie = next(c for c in context.cookies() if c["name"] == "aiops_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["value"] != approver
        # a forged cross-site POST carries the cookies but not the CSRF header: refused
        forged = context.request.post(f"{base}/api/v1/approvals/1/decision", data={"approved": True})
        assert forged.status == 403 and "CSRF" in forged.json()["detail"]
        page.click("form.approval button.approve")  # empty reason: the browser refuses to submit
        assert page.evaluate("document.querySelector('form.approval textarea').validity.valueMissing")
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        page.fill("form.approval textarea", "SMART failing; node drained already")
        page.click("form.approval button.approve")
        page.wait_for_selector("#live >> text=approved by ana")
        assert dialogs and "Risk high" in dialogs[0]
        shot(page, "console-approved")
        with session_scope(url) as session:
            decided = session.query(Approval).one()
            audit = session.query(AuditEntry).filter(AuditEntry.action == "approval.approved").one()
            assert (decided.status, decided.decided_by, decided.comment) == (
                "approved", "ana", "SMART failing; node drained already")
            assert audit.actor == "ana"
    finally:
        context.close()
        srv.should_exit = True
        thread.join(10)


def test_drift_review_approve_commits_a_branch_and_supersedes_twins(platform_env, tmp_path, monkeypatch, page):
    import json

    from services.drift.models import DriftProposal
    from services.storage.base import session_scope
    from services.worker import tasks
    from sim.drift import DriftSimulator

    drift = DriftSimulator(endpoint=platform_env["AIOPS_CLOUD_ENDPOINT"], workdir=tmp_path / "iac", seed=2)
    monkeypatch.setenv("AIOPS_IAC_WORKSPACES", json.dumps([drift.setup()]))
    install_settings()
    drift.step()
    tasks.reconcile_iac.apply(args=["demo-bastion"])
    url = platform_env["AIOPS_DATABASE_URL"]
    with session_scope(url) as session:
        real = session.query(DriftProposal).one()
        # a second proposal for the same resource in the same workspace (found by a later run), and one
        # in another workspace: approving the first supersedes the former and leaves the latter alone
        twin = DriftProposal(workspace=real.workspace, external_id="twin", title="twin in the same workspace",
                             diff=real.diff, payload=real.payload, records=real.records)
        other = DriftProposal(workspace="elsewhere", external_id="other", title="same address, other workspace",
                              diff=real.diff, payload=real.payload, records=real.records)
        session.add_all([twin, other])
        session.flush()
        real_id, twin_id, other_id = real.id, twin.id, other.id
    from services.api.app import create_app

    base, srv, thread = serve(create_app(start_workers=False))
    try:
        page.goto(f"{base}/#drifts")
        page.wait_for_selector(f"#proposal-{real_id}")
        card = page.locator(f"#proposal-{real_id}")
        text = card.inner_text()
        assert "patched config matches the live cloud" in text and "+++ b/" in text
        assert "198.51.100.7" in text and "arn:aws:iam::" in text  # who changed it and from where
        added = card.locator("pre.diff .d-add").first
        assert added.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
        card.locator("button.approve").click()
        page.wait_for_selector(f"#proposal-{real_id} code.branch", timeout=30_000)
        assert f"Superseded: superseded by #{real_id}" in page.inner_text(f"#proposal-{twin_id}")
        assert page.locator(f"#proposal-{twin_id} button.approve").count() == 0
        other_card = page.locator(f"#proposal-{other_id}")
        other_card.locator("button.reject").click()  # no reason: the server refuses and says why
        page.wait_for_selector("#flash >> text=needs a reason")
        other_card.locator("textarea[name=reason]").fill("the change is temporary")
        other_card.locator("button.reject").click()
        page.wait_for_selector(f"#proposal-{other_id} >> text=review: the change is temporary")
        shot(page, "console-drift")
        page.select_option("select[name=status]", "superseded")
        page.wait_for_function("document.querySelectorAll('article.proposal').length === 1")
    finally:
        srv.should_exit = True
        thread.join(10)


def test_live_incident_to_approval(server, page, platform_env):
    """Agents run for real; the list and the incident page update by server-sent events, no reload."""
    import httpx

    page.goto(server)
    page.wait_for_selector("text=No incidents match")
    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    httpx.post(f"{server}/api/v1/alerts", json={"name": "DiskErrors", "severity": "critical", "node": node,
                                                "summary": "I/O error on /dev/nvme1n1; SMART failing"})
    page.wait_for_selector("#incident-table .status-awaiting_approval", timeout=60_000)
    page.click("#incident-table a.row-link")
    page.wait_for_selector("form.approval")
    assert "send_to_repair" in page.inner_text("form.approval")
    page.on("dialog", lambda dialog: dialog.accept())
    if page.locator("form.approval textarea[required]").count():
        page.fill("form.approval textarea", "disk is failing")
    page.click("form.approval button.approve")
    page.wait_for_selector(".facts .status-resolved", timeout=60_000)  # pushed by the event stream
    page.wait_for_selector(".timeline >> text=send_to_repair", timeout=10_000)
    assert httpx.get(f"{server}/api/v1/approvals").json()["items"] == []


AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"


def test_pages_have_no_serious_accessibility_violations(quiet_server, page, platform_env):
    [first] = seed(platform_env["AIOPS_DATABASE_URL"])
    found = {}
    for scheme, path in [(s, p) for s in ("light", "dark")
                         for p in ("/incidents", f"/incidents/{first}", "/approvals", "/drift", "/login", "/audit")]:
        page.emulate_media(color_scheme=scheme)
        page.goto(quiet_server + path)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}" for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
        if bad:
            found[f"{path} ({scheme})"] = bad
    assert not found, found
