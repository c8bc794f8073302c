"""The console in a real browser (Debian chromium driven by Playwright): see an incident, approve it."""

from __future__ import annotations

import threading

import pytest
import uvicorn

from tests.conftest import ec2_node, free_port, install_settings, wait_for

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def server(platform_env):
    from services.api.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, message="uvicorn started")
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_operator_sees_incident_and_approves_repair(server, page, platform_env):
    import httpx

    page.goto(server)
    page.wait_for_selector("text=No incidents yet")  # the empty state explains what to do
    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    httpx.post(f"{server}/api/v1/alerts", json={"name": "DiskErrors", "severity": "critical", "node": node,
                                                "summary": "I/O error on /dev/nvme1n1; SMART failing"})
    row = page.locator("#incident-table tbody tr[data-id]").first
    row.wait_for(timeout=30_000)
    page.wait_for_selector("#incident-table .status-awaiting_approval", timeout=60_000)
    row.click()
    page.wait_for_selector("#detail >> text=Approval needed")
    assert "send_to_repair" in page.inner_text("#detail")
    page.screenshot(path=str(platform_env["AIOPS_CHROMA_PATH"]).replace("chroma", "console.png"))
    page.click("#detail button.approve")
    page.wait_for_selector("#incident-table .status-resolved", timeout=60_000)
    page.wait_for_selector("#detail >> text=resolved by send_to_repair", timeout=10_000)
    pending = httpx.get(f"{server}/api/v1/approvals").json()["items"]
    assert pending == []
    page.wait_for_function("document.querySelector('#approval-count').textContent === ''", timeout=10_000)


def test_drift_tab_shows_verified_patch_and_rejects_with_reason(platform_env, tmp_path, monkeypatch, page):
    import json

    from services.worker import tasks
    from sim.drift import DriftSimulator

    drift = DriftSimulator(endpoint=platform_env["AIOPS_CLOUD_ENDPOINT"], workdir=tmp_path / "iac", seed=2)
    monkeypatch.setenv("AIOPS_IAC_WORKSPACES", json.dumps([drift.setup()]))
    install_settings()
    drift.step()
    tasks.reconcile_iac.apply(args=["demo-bastion"])
    from services.api.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(start_workers=False), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, message="uvicorn started")
    try:
        page.goto(f"http://127.0.0.1:{port}/#drifts")
        page.wait_for_selector("#drift-list article")
        text = page.inner_text("#drift-list")
        assert "patched config matches the live cloud" in text and "+++ b/" in text
        page.on("dialog", lambda dialog: dialog.accept("the change is temporary"))
        page.click("#drift-list button.reject")
        page.wait_for_selector("#drift-list >> text=review: the change is temporary")
    finally:
        srv.should_exit = True
        thread.join(10)
