"""A console session works across API processes: signed in on one, used and signed out on the other,
and a revoked token's session refused by both (the session lives in PostgreSQL, not in a process)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.platform.apiprocs import api_env, drop_broker_keys, start_api, stop
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sign_in(base: str, token: str) -> dict[str, str]:
    """The browser's cookies after signing in with ``token`` on the process at ``base``."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as browser:
        browser.get("/login")
        done = browser.post("/login", data={"token": token, "csrf": browser.cookies["aiops_csrf"]})
        assert done.status_code == 303, done.text
        return {"aiops_session": browser.cookies["aiops_session"], "aiops_csrf": browser.cookies["aiops_csrf"]}


def read(base: str, cookies: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{base}/api/v1/incidents", cookies=cookies, timeout=30)


def test_a_console_session_is_shared_by_api_processes(tmp_path, moto_endpoint):
    from services.auth.service import issue_token, revoke_token
    from services.storage.migrate import upgrade

    prefix = f"aiops-sess-{uuid.uuid4().hex[:8]}:"
    with fresh_postgres("aiops_sess_api") as url:
        upgrade(url)
        env = api_env(database_url=url, moto_endpoint=moto_endpoint, workdir=tmp_path, prefix=prefix,
                      AIOPS_AUTH_REQUIRED="true")
        issued = issue_token(url, user="olga", role="operator")
        procs = []
        try:
            for i in range(2):
                procs.append(start_api(env=env, workdir=tmp_path / f"api{i}", name=f"api{i}"))
            (_, first), (_, second) = procs
            cookies = sign_in(first, issued["token"])
            assert cookies["aiops_session"] != issued["token"]
            assert read(second, cookies).status_code == 200  # signed in on one, known to the other
            out = httpx.post(f"{second}/logout", cookies=cookies, headers={"X-CSRF-Token": cookies["aiops_csrf"]},
                             timeout=30)
            assert out.status_code == 303
            assert read(first, cookies).status_code == 401  # signed out on the other: gone here too
            again = sign_in(second, issued["token"])
            assert read(first, again).status_code == 200
            revoke_token(url, token_id=issued["id"], actor="test")
            for base in (first, second):
                refused = read(base, again)
                assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        finally:
            for proc, _ in procs:
                stop(proc)
            drop_broker_keys(prefix)
