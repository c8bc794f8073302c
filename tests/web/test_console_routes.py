"""The console's server side without a browser: incident operations over the API, the session cookie
and its CSRF rule, sign-in redirects, and superseding drift proposals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import install_settings
from tests.web.test_console import seed


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        yield client


def test_incident_list_search_filters_sort_and_paging(client, platform_env):
    ids = seed(platform_env["AIOPS_DATABASE_URL"], count=12)
    everything = client.get("/api/v1/incidents", params={"per_page": 5}).json()
    assert (everything["total"], len(everything["items"]), everything["items"][0]["id"]) == (12, 5, ids[-1])
    assert client.get("/api/v1/incidents", params={"sort": "oldest"}).json()["items"][0]["id"] == ids[0]
    by_severity = [i["severity"] for i in client.get("/api/v1/incidents", params={"sort": "severity"}).json()["items"]]
    assert by_severity == sorted(by_severity, key=["critical", "high", "warning", "info"].index)
    assert [i["id"] for i in client.get("/api/v1/incidents", params={"q": "smart"}).json()["items"]] == ids[::-1]
    assert [i["id"] for i in client.get("/api/v1/incidents", params={"q": "checkout-3"}).json()["items"]] == [ids[3]]
    assert [i["id"] for i in client.get("/api/v1/incidents", params={"q": f"#{ids[5]}"}).json()["items"]] == [ids[5]]
    waiting = client.get("/api/v1/incidents", params={"status": "awaiting_approval"}).json()
    assert [i["id"] for i in waiting["items"]] == [ids[0]]
    node = client.get("/api/v1/incidents", params={"node": "node-4", "service": "checkout"}).json()
    assert [i["id"] for i in node["items"]] == [ids[4]]
    assert client.get("/api/v1/incidents", params={"sort": "random"}).status_code == 422


def test_incident_operations_are_on_the_timeline_and_in_the_audit_log(client, platform_env):
    from services.actions.models import Approval
    from services.audit.models import AuditEntry
    from services.storage.base import session_scope

    url = platform_env["AIOPS_DATABASE_URL"]
    [first] = seed(url)
    base = f"/api/v1/incidents/{first}"
    assert client.post(f"{base}/ack").json()["acknowledged_by"] == "operator"
    again = client.post(f"{base}/ack")
    assert again.status_code == 409 and "already acknowledged by operator" in again.json()["detail"]
    assert client.post(f"{base}/assign", json={"assignee": "bob"}).json()["assignee"] == "bob"
    assert client.post(f"{base}/severity", json={"severity": "bogus"}).status_code == 422
    assert client.post(f"{base}/severity", json={"severity": "high"}).json()["severity"] == "high"
    assert client.post(f"{base}/comments", json={"text": "looking"}).status_code == 201
    assert client.post(f"{base}/resolve", json={"reason": ""}).status_code == 422
    assert client.post(f"{base}/reopen", json={"reason": "x"}).status_code == 409  # it is not closed
    assert client.post(f"{base}/resolve", json={"reason": "fixed by hand"}).json()["status"] == "resolved"
    assert client.post(f"{base}/resolve", json={"reason": "again"}).status_code == 409
    assert client.post(f"{base}/reopen", json={"reason": "came back"}).json()["status"] == "open"
    assert client.post("/api/v1/incidents/999/ack").status_code == 404
    detail = client.get(base).json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[-6:] == ["acknowledged", "assigned", "severity", "comment", "resolved", "reopened"]
    assert detail["approvals"][0]["status"] == "cancelled"  # no action runs after a person resolved it
    with session_scope(url) as session:
        approval = session.query(Approval).one()
        actions = [a for (a,) in session.query(AuditEntry.action).filter(AuditEntry.subject == f"incident:{first}")]
    assert actions == ["incident.acknowledged", "incident.assigned", "incident.severity", "incident.comment",
                       "incident.resolved", "incident.reopened"]
    assert client.post(f"/api/v1/approvals/{approval.id}/decision", json={"approved": True}).status_code == 409
    markdown = client.get(f"{base}/postmortem")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "| comment | operator | looking |" in markdown.text and "fixed by hand" in markdown.text


def test_session_cookie_needs_csrf_and_sign_in_keeps_to_this_site(platform_env, monkeypatch):
    from services.api.app import create_app
    from services.auth.service import create_token, issue_token

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    install_settings()
    url = platform_env["AIOPS_DATABASE_URL"]
    [first] = seed(url)
    operator = create_token(url, user="olga", role="operator")
    viewer = create_token(url, user="vic", role="viewer")
    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        assert client.get("/incidents").headers["location"] == "/login?next=/incidents"
        assert client.get("/docs").status_code == 200  # the API reference stays public
        client.get("/login")
        csrf = client.cookies["aiops_csrf"]
        assert client.post("/login", data={"token": operator, "csrf": "wrong"}).status_code == 403
        bad = client.post("/login", data={"token": "nope", "csrf": csrf})
        assert bad.status_code == 401 and "invalid API token" in bad.text
        done = client.post("/login", data={"token": operator, "csrf": csrf, "next": "//evil.example/x"})
        assert done.status_code == 303 and done.headers["location"] == "/"  # never off-site
        session_csrf = client.cookies["aiops_csrf"]
        assert session_csrf != csrf  # a new CSRF value per session
        assert client.get("/api/v1/incidents").status_code == 200  # the cookie signs API reads in
        refused = client.post(f"/api/v1/incidents/{first}/ack")
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        assert client.post(f"/incidents/{first}/ack").status_code == 403
        ok = client.post(f"/incidents/{first}/ack", headers={"X-CSRF-Token": session_csrf})
        assert ok.status_code == 200 and "acknowledged by <b>olga</b>" in ok.text
        decide = client.post("/approvals/1/decide", data={"approved": "true", "reason": "x"},
                             headers={"X-CSRF-Token": session_csrf})
        assert decide.status_code == 403  # an operator cannot approve
        use(client, url, viewer, session_csrf)
        assert client.post(f"/api/v1/incidents/{first}/comments", json={"text": "hi"},
                           headers={"X-CSRF-Token": session_csrf}).status_code == 403  # a viewer cannot comment
        short = issue_token(url, user="tmp", role="operator")
        use(client, url, short["token"], session_csrf)
        from services.auth.service import revoke_token

        revoke_token(url, token_id=short["id"], actor="test")
        assert client.get("/incidents").headers["location"].startswith("/login")  # revoked: signed out
        out = client.post("/logout", headers={"X-CSRF-Token": session_csrf})
        assert out.status_code == 303 and 'aiops_session=""' in out.headers.get("set-cookie", "")


def use(client: TestClient, url: str, token: str, csrf: str) -> str:
    """The browser holds a console session of this token (and the CSRF value) from now on; its session id."""
    from services.auth.service import start_console_session

    session_id, _ = start_console_session(url, token=token, max_age_s=3600)
    client.cookies.clear()
    client.cookies.set("aiops_session", session_id)
    client.cookies.set("aiops_csrf", csrf)
    return session_id


def test_the_session_cookie_is_a_server_side_session_not_the_token(platform_env, monkeypatch):
    """Sign-in hands out a random id stored hashed with an expiry; sign-out and revocation end it."""
    from services.api.app import create_app
    from services.auth.models import ConsoleSession
    from services.auth.service import issue_token, revoke_token
    from services.storage.base import session_scope

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    install_settings()
    url = platform_env["AIOPS_DATABASE_URL"]
    seed(url)
    issued = issue_token(url, user="olga", role="operator")
    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        client.get("/login")
        done = client.post("/login", data={"token": issued["token"], "csrf": client.cookies["aiops_csrf"]})
        assert done.status_code == 303
        header = done.headers.get_list("set-cookie")
        session_header = next(h for h in header if h.startswith("aiops_session="))
        assert "httponly" in session_header.lower() and "samesite=lax" in session_header.lower()
        assert "secure" not in session_header.lower()  # plain http, no setting: not Secure
        session_id = client.cookies["aiops_session"]
        assert session_id != issued["token"] and issued["token"] not in " ".join(header)
        with session_scope(url) as session:
            row = session.query(ConsoleSession).one()
            assert row.token_id == issued["id"] and row.session_hash not in (session_id, issued["token"])
            assert row.expires_at > row.created_at
        assert client.get("/api/v1/incidents").status_code == 200
        # the session id is no bearer token
        assert client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {session_id}"}).status_code == 401
        csrf = client.cookies["aiops_csrf"]
        out = client.post("/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 303
        # a copy of the cookie kept from before the sign-out no longer works
        client.cookies.set("aiops_session", session_id)
        client.cookies.set("aiops_csrf", csrf)
        refused = client.get("/api/v1/incidents")
        assert refused.status_code == 401 and "signed out" in refused.json()["detail"]
        assert client.get("/incidents").headers["location"].startswith("/login")
        # revoking the token ends a live session of it
        use(client, url, issued["token"], csrf)
        assert client.get("/api/v1/incidents").status_code == 200
        revoke_token(url, token_id=issued["id"], actor="test")
        assert "revoked" in client.get("/api/v1/incidents").json()["detail"]
        with session_scope(url) as session:
            assert all(r.ended_at is not None for r in session.query(ConsoleSession))


def test_session_cookies_are_secure_behind_https_or_by_setting(platform_env, monkeypatch):
    from services.api.app import create_app
    from services.auth.service import create_token

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    install_settings()
    token = create_token(platform_env["AIOPS_DATABASE_URL"], user="olga", role="operator")

    def sign_in(client: TestClient, **headers: str) -> str:
        client.get("/login")
        csrf = client.cookies["aiops_csrf"]
        client.cookies.clear()  # sent by hand: a client keeps a Secure cookie from a plain-http server to itself
        done = client.post("/login", data={"token": token, "csrf": csrf},
                           headers={**headers, "Cookie": f"aiops_csrf={csrf}"})
        assert done.status_code == 303
        return next(h for h in done.headers.get_list("set-cookie") if h.startswith("aiops_session=")).lower()

    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        assert "secure" in sign_in(client, **{"X-Forwarded-Proto": "https"})
    with TestClient(create_app(start_workers=False), follow_redirects=False, base_url="https://console.example") as client:
        assert "secure" in sign_in(client)
    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        assert "secure" not in sign_in(client)
    monkeypatch.setenv("AIOPS_PUBLIC_URL", "https://console.example")  # TLS ends at a proxy that says nothing
    install_settings()
    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        assert "secure" in sign_in(client)
    monkeypatch.setenv("AIOPS_COOKIE_SECURE", "false")  # the setting wins
    install_settings()
    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        assert "secure" not in sign_in(client)
    monkeypatch.delenv("AIOPS_PUBLIC_URL")
    monkeypatch.setenv("AIOPS_COOKIE_SECURE", "true")
    install_settings()
    with TestClient(create_app(start_workers=False), follow_redirects=False) as client:
        assert "secure" in sign_in(client)


def test_high_risk_approval_needs_a_written_reason(client, platform_env):
    [first] = seed(platform_env["AIOPS_DATABASE_URL"])
    client.get("/incidents")
    headers = {"X-CSRF-Token": client.cookies["aiops_csrf"]}
    silent = client.post("/approvals/1/decide", data={"approved": "true", "reason": " "}, headers=headers)
    assert silent.status_code == 422 and "needs a written reason" in silent.json()["detail"]
    done = client.post("/approvals/1/decide", data={"approved": "true", "reason": "disk is gone"}, headers=headers)
    assert done.status_code == 200 and "disk is gone" in done.text


def test_slack_links_open_the_incident_page_itself():
    from services.notify.service import slack_blocks

    event = {"incident_id": 5, "title": "t", "kind": "opened", "message": "m", "data": {}}
    text = slack_blocks(event, console_url="https://ops.example/")["blocks"][0]["text"]["text"]
    assert "<https://ops.example/incidents/5|open in console>" in text
    drift = slack_blocks({**event, "incident_id": 0}, console_url="https://ops.example")["blocks"][0]["text"]["text"]
    assert "<https://ops.example/drift|" in drift


def test_an_expired_console_session_is_refused_and_forgotten_at_the_next_sign_in(platform_env):
    from datetime import timedelta

    from services.auth.models import ConsoleSession
    from services.auth.service import (
        TokenRejected,
        create_token,
        lookup_console_session,
        start_console_session,
    )
    from services.storage.base import session_scope, utcnow

    url = platform_env["AIOPS_DATABASE_URL"]
    token = create_token(url, user="olga", role="operator", expires_in_s=600)
    old, principal = start_console_session(url, token=token, max_age_s=3600)
    assert lookup_console_session(url, old) == principal
    with session_scope(url) as session:
        row = session.query(ConsoleSession).one()
        assert row.expires_at <= utcnow() + timedelta(seconds=600)  # never outlives its token
        row.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(TokenRejected, match="expired"):
        lookup_console_session(url, old)
    start_console_session(url, token=token, max_age_s=3600)
    with session_scope(url) as session:
        assert session.query(ConsoleSession).count() == 1
    with pytest.raises(TokenRejected, match="unknown console session"):
        lookup_console_session(url, old)
