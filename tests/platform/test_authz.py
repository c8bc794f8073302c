"""Authorization: the whole role x route matrix, generated from the app's OpenAPI routes; token
expiry and revocation; the hash-chained audit log and its read API."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import install_settings

ROLES = ("viewer", "operator", "approver", "admin")


@pytest.fixture
def secured(platform_env, monkeypatch):
    """An app with auth on, one token per role, and the (path, method) -> role table."""
    from services.api.app import create_app
    from services.auth.service import create_token

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    install_settings()
    url = platform_env["AIOPS_DATABASE_URL"]
    tokens = {role: create_token(url, user=f"u-{role}", role=role) for role in ROLES}
    app = create_app(start_workers=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app, tokens


def _operations(client: TestClient) -> dict[tuple[str, str], str | None]:
    """(path, METHOD) -> the role the OpenAPI document says the operation needs."""
    spec = client.get("/openapi.json").json()
    return {(path, method.upper()): op.get("x-required-role") for path, ops in spec["paths"].items()
            for method, op in ops.items()}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "v1" if m.group(0) == "{version}" else "1", path)


def test_every_route_declares_a_role(secured):
    client, _, _ = secured
    table = _operations(client)
    missing = [op for op, role in table.items() if role is None]
    assert not missing, f"routes without a Require(...) dependency: {missing}"
    assert table[("/healthz", "GET")] == "public" and table[("/readyz", "GET")] == "public"


def test_role_matrix(secured):
    """401 without a token, 403 below the route's role, neither at or above it, for every route."""
    from services.auth.roles import rank

    client, _, tokens = secured
    failures, checked = [], 0
    for (path, method), need in _operations(client).items():
        url = _concrete(path)
        kwargs = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
        anonymous = client.request(method, url, **kwargs).status_code
        if need == "public":
            if anonymous in (401, 403):
                failures.append(f"{method} {path}: public but anonymous got {anonymous}")
            continue
        role = need.split("?")[0]
        if anonymous != 401:
            failures.append(f"{method} {path}: anonymous got {anonymous}, expected 401")
        for who in ROLES:
            got = client.request(method, url, headers={"Authorization": f"Bearer {tokens[who]}"}, **kwargs).status_code
            checked += 1
            if rank(who) < rank(role) and got != 403:
                failures.append(f"{method} {path}: {who} got {got}, expected 403 (needs {role})")
            if rank(who) >= rank(role) and (got in (401, 403) or got >= 500):
                failures.append(f"{method} {path}: {who} got {got} (needs {role})")
    assert checked >= 4 * 20
    assert not failures, "\n".join(failures)


def test_metrics_public_by_setting(platform_env, monkeypatch):
    from services.api.app import create_app

    monkeypatch.setenv("AIOPS_AUTH_REQUIRED", "true")
    monkeypatch.setenv("AIOPS_METRICS_PUBLIC", "true")
    install_settings()
    with TestClient(create_app(start_workers=False)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/v1/incidents").status_code == 401


def test_viewer_cannot_approve_ingest_or_reconcile(secured):
    client, _, tokens = secured
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.post("/api/v1/approvals/1/decision", json={"approved": True}, headers=viewer).status_code == 403
    assert client.post("/api/v1/alerts", json={"name": "X"}, headers=viewer).status_code == 403
    assert client.post("/api/v1/drift/reconcile", json={}, headers=viewer).status_code == 403
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 200


def test_expired_and_revoked_tokens_are_refused(secured, platform_env):
    from services.auth.models import ApiToken
    from services.auth.service import issue_token
    from services.storage.base import session_scope, utcnow

    client, _, tokens = secured
    url = platform_env["AIOPS_DATABASE_URL"]
    short = issue_token(url, user="temp", role="viewer", expires_in_s=60)
    headers = {"Authorization": f"Bearer {short['token']}"}
    assert client.get("/api/v1/incidents", headers=headers).status_code == 200
    with session_scope(url) as session:
        session.execute(update(ApiToken).where(ApiToken.id == short["id"]).values(expires_at=utcnow()))
    expired = client.get("/api/v1/incidents", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    made = client.post("/api/v1/tokens", json={"user": "bot", "role": "operator"}, headers=admin)
    assert made.status_code == 201
    bot = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.post("/api/v1/alerts", json={"name": "B", "node": "n"}, headers=bot).status_code == 202
    assert client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=admin).status_code == 200
    refused = client.post("/api/v1/alerts", json={"name": "B", "node": "n"}, headers=bot)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=admin).status_code == 409
    listed = client.get("/api/v1/tokens", headers=admin).json()["items"]
    assert all("token" not in t for t in listed) and any(t["revoked_at"] for t in listed)


def test_cli_revokes_a_token(platform_env):
    from services.auth.service import issue_token, lookup
    from tests.conftest import run_cli

    made = issue_token(platform_env["AIOPS_DATABASE_URL"], user="cli-user", role="viewer")
    done = run_cli("token", "revoke", str(made["id"]), env=platform_env)
    assert done.returncode == 0, done.stdout + done.stderr
    from services.auth.service import TokenRejected

    with pytest.raises(TokenRejected, match="revoked"):
        lookup(platform_env["AIOPS_DATABASE_URL"], made["token"])


def test_state_changes_are_audited_in_a_verifiable_chain(secured, platform_env):
    from services.audit.models import AuditEntry
    from services.audit.service import verify_chain
    from services.storage.base import session_scope

    client, _, tokens = secured
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    approver = {"Authorization": f"Bearer {tokens['approver']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    assert client.post("/api/v1/alerts", json={"name": "Audit", "node": "n1"}, headers=operator).status_code == 202
    assert client.post("/api/v1/drift/reconcile", json={}, headers=operator).status_code == 202
    log = client.get("/api/v1/audit", headers=approver)
    assert log.status_code == 200
    actions = [e["action"] for e in log.json()["items"]]
    assert {"alerts.ingest", "drift.reconcile", "token.create"} <= set(actions)
    assert client.get("/api/v1/audit", headers=operator).status_code == 403
    assert client.get("/api/v1/audit/verify", headers=admin).json()["ok"] is True

    url = platform_env["AIOPS_DATABASE_URL"]
    with session_scope(url) as session:
        first = session.query(AuditEntry).order_by(AuditEntry.id).first()
        first.actor = "someone-else"  # tampering: the row is edited in place
    with session_scope(url) as session:
        check = verify_chain(session)
    assert not check.ok and check.first_bad_id == first.id
    bad = client.get("/api/v1/audit/verify", headers=admin).json()
    assert bad["ok"] is False and bad["first_bad_id"] == first.id


def test_deleting_an_audit_entry_breaks_the_chain(platform_env):
    from services.audit.models import AuditEntry
    from services.audit.service import record, verify_chain
    from services.storage.base import session_scope

    url = platform_env["AIOPS_DATABASE_URL"]
    for i in range(3):
        with session_scope(url) as session:
            record(session, actor="t", action="test", subject=str(i), data={"i": i, "f": 0.5})
    with session_scope(url) as session:
        assert verify_chain(session).ok
        middle = session.query(AuditEntry).filter(AuditEntry.subject == "1").one()
        session.delete(middle)
    with session_scope(url) as session:
        check = verify_chain(session)
    assert not check.ok and "link" in check.reason
