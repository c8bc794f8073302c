"""The dispatch outbox: alerts that open an incident are stored undispatched and a dispatcher hands the
incident to the observer queue afterwards; never twice by two dispatchers, never lost by a killed one.

Dispatchers run as real processes (``aiops dispatch``) in their own working directories, on SQLite
and on PostgreSQL, publishing to the shared Redis under a key prefix of their own; what they
published is read back from Redis.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest
import redis
from sqlalchemy import func, select

from tests.conftest import REDIS_URL, ROOT, wait_for
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INCIDENTS = 40


def published(prefix: str, *, db: int = 12, port: int | None = None) -> Counter:
    """Incident id -> how many observe tasks for it wait in the broker (every priority list of the queue)."""
    client = redis.Redis(port=port, db=db) if port else redis.Redis.from_url(f"{REDIS_URL}/{db}")
    seen: Counter = Counter()
    for key in client.scan_iter(f"{prefix}observe*"):
        if client.type(key) != b"list":
            continue
        for raw in client.lrange(key, 0, -1):
            message = json.loads(raw)
            assert message["headers"]["task"] == "aiops.observe"
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            seen[args[0]] += 1
    return seen


def _purge(prefix: str, *, db: int = 12) -> None:
    client = redis.Redis.from_url(f"{REDIS_URL}/{db}")
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _seed(url: str, n: int) -> list[int]:
    """``n`` new incidents as an API post leaves them: stored, their alerts in the outbox, nothing sent."""
    from services.alerts.models import Alert, NormalizedAlert
    from services.alerts.service import store_alerts
    from services.storage.base import session_scope
    from services.storage.migrate import upgrade

    upgrade(url)
    with session_scope(url) as session:
        result = store_alerts(session, [NormalizedAlert(source="webhook", name="DiskFull", node=f"n-{i}",
                                                        severity="high") for i in range(n)])
    with session_scope(url) as session:
        waiting = session.scalar(select(func.count(Alert.id)).where(Alert.dispatched.is_(False)))
    assert waiting == n and len(result.incidents_opened) == n
    return sorted(result.incidents_opened)


def _undispatched(url: str) -> int:
    from services.alerts.models import Alert
    from services.storage.base import session_scope

    with session_scope(url) as session:
        return session.scalar(select(func.count(Alert.id)).where(Alert.dispatched.is_(False)))


def _env(url: str, prefix: str, tmp_path, **extra: str) -> dict[str, str]:
    broker = f"{REDIS_URL}/12"
    return {**os.environ, "AIOPS_DATABASE_URL": url, "AIOPS_BROKER_URL": broker, "AIOPS_RESULT_BACKEND": broker,
            "AIOPS_BROKER_KEY_PREFIX": prefix, "AIOPS_CHROMA_PATH": str(tmp_path / "chroma"),
            "AIOPS_EMBEDDING": "hashing", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def _dispatcher(env: dict[str, str], workdir, *args: str) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "services", "dispatch", *args], cwd=workdir, env=env,
                            stdout=open(workdir / "dispatch.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aiops.db'}"
        return
    with fresh_postgres("aiops_outbox") as url:
        yield url


def test_store_leaves_new_incidents_in_the_outbox_and_joins_out_of_it(platform_env):
    from services.alerts.models import Alert, NormalizedAlert
    from services.alerts.service import store_alerts
    from services.storage.base import session_scope

    url = platform_env["AIOPS_DATABASE_URL"]
    with session_scope(url) as session:
        opened = store_alerts(session, [NormalizedAlert(source="webhook", name="A", node="n1"),
                                        NormalizedAlert(source="webhook", name="B", node="n1")])
    with session_scope(url) as session:
        joined = store_alerts(session, [NormalizedAlert(source="webhook", name="C", node="n1")])
        rows = {a.name: a.dispatched for a in session.scalars(select(Alert))}
    assert len(opened.incidents_opened) == 1 and opened.opened[0].id == opened.incidents_opened[0]
    assert joined.incidents_joined == opened.incidents_opened and joined.opened == []
    assert rows == {"A": False, "B": False, "C": True}  # only a new incident waits for the dispatcher


def test_two_dispatcher_processes_never_publish_the_same_row(database, tmp_path):
    prefix = f"aiops-outbox-{uuid.uuid4().hex[:8]}:"
    incidents = _seed(database, INCIDENTS)
    # a slow publish (100 ms per incident) so the two drains overlap for the whole run
    env = _env(database, prefix, tmp_path, AIOPS_CHAOS_STAGE="dispatch", AIOPS_CHAOS_DELAY_S="0.1",
               AIOPS_DISPATCH_BATCH="5")
    try:
        procs = [_dispatcher(env, tmp_path / f"d{i}", "--once") for i in range(2)]
        for i, proc in enumerate(procs):
            assert proc.wait(timeout=120) == 0, (tmp_path / f"d{i}" / "dispatch.log").read_text()[-2000:]
        logs = [(tmp_path / f"d{i}" / "dispatch.log").read_text() for i in range(2)]
        sent = published(prefix)
    finally:
        _purge(prefix)
    assert sorted(sent) == incidents and set(sent.values()) == {1}, sent  # each incident exactly once
    assert _undispatched(database) == 0
    assert all("dispatched" in log and "dispatched 0 " not in log for log in logs), logs  # both took a share


def test_a_dispatcher_killed_mid_drain_loses_nothing(database, tmp_path):
    prefix = f"aiops-outbox-{uuid.uuid4().hex[:8]}:"
    incidents = _seed(database, INCIDENTS)
    slow = _env(database, prefix, tmp_path, AIOPS_CHAOS_STAGE="dispatch", AIOPS_CHAOS_DELAY_S="0.1",
                AIOPS_DISPATCH_BATCH="10", AIOPS_DISPATCH_LEASE_S="3")
    try:
        first = _dispatcher(slow, tmp_path / "first")
        wait_for(lambda: sum(published(prefix).values()) >= 3, timeout=60, message="first dispatcher publishing")
        os.killpg(first.pid, signal.SIGKILL)  # mid-batch: some of its claimed rows are published, none marked
        first.wait(timeout=10)
        before = published(prefix)
        assert _undispatched(database) > 0 and len(before) < INCIDENTS
        second = _dispatcher(_env(database, prefix, tmp_path, AIOPS_DISPATCH_LEASE_S="3"), tmp_path / "second")
        try:
            wait_for(lambda: _undispatched(database) == 0, timeout=60, message="the second dispatcher drains it")
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=10)
        after = published(prefix)
    finally:
        _purge(prefix)
    assert sorted(after) == incidents  # nothing lost
    # at least once: only what the killed dispatcher published without marking is sent again
    assert all(count <= before[incident] + 1 for incident, count in after.items()), after


def test_concurrent_ingest_keeps_the_audit_chain_whole(platform_env):
    """The ingest's audit row reads its parent first when the transaction already wrote (SQLite's write
    lock is held): concurrent posts, some writing nothing (a resolve of an unknown alert), chain intact.
    Through the group writer: the posts' audit rows are chained a group at a time (``record_many``)."""
    from concurrent.futures import ThreadPoolExecutor

    from services.alerts.views import _ingest, store_blocking
    from services.audit.models import AuditEntry
    from services.audit.service import verify_chain
    from services.config import Settings
    from services.storage.base import session_scope

    settings = Settings(dispatch_in_api=False)

    def post(i: int) -> None:
        body = ({"name": f"Gone-{i}", "node": "x", "status": "resolved"} if i % 4 == 0
                else {"name": f"Hot-{i % 7}", "node": f"n-{i % 5}"})  # new, repeats and joins
        store_blocking(_ingest(json.dumps(body).encode(), user="op", settings=settings), user="op",
                       settings=settings)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(120)))
    with session_scope(platform_env["AIOPS_DATABASE_URL"]) as session:
        check = verify_chain(session)
        entries = session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "alerts.ingest"))
    assert check.ok, check.to_dict()
    assert entries == 120
