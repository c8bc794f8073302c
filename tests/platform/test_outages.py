"""Outages of the real services the API depends on, on throwaway instances (never the shared ones).

Redis down: the API keeps answering 202 (alerts stored, their new incidents in the dispatch
outbox), /readyz says degraded; when Redis is back, the API's dispatcher sends each once. PostgreSQL down: 503 problem+json
with Retry-After and nothing half-stored; when it is back, ingest works again.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, func, select

from tests.conftest import free_port, wait_for
from tests.platform.apiprocs import api_env, start_api, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _redis(port: int, workdir) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: _pings(port), timeout=20, message="throwaway redis up")
    return proc


def _pings(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=1).ping()
    except redis.RedisError:
        return False


def _alerts(url: str, **where) -> int:
    from services.alerts.models import Alert

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = select(func.count(Alert.id))
            for key, value in where.items():
                query = query.where(getattr(Alert, key) == value)
            return conn.execute(query).scalar()
    finally:
        engine.dispose()


def test_redis_down_api_accepts_and_dispatches_once_when_it_returns(tmp_path, moto_endpoint):
    from tests.platform.test_ingest_dispatch_outbox import published

    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    from services.storage.migrate import upgrade

    upgrade(url)
    env = api_env(database_url=url, moto_endpoint=moto_endpoint, workdir=tmp_path, broker=broker)
    server = _redis(port, tmp_path)
    api, base = start_api(env=env, workdir=tmp_path / "api", name="api")
    try:
        first = httpx.post(f"{base}/api/v1/alerts", json={"name": "Up", "node": "n1"}, timeout=60)
        assert first.status_code == 202 and first.json()["queued"]
        wait_for(lambda: _alerts(url, dispatched=False) == 0, timeout=30, message="the API's dispatcher sent it")
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"

        stop(server)  # Redis goes away
        outage = [httpx.post(f"{base}/api/v1/alerts", json={"name": "Down", "node": f"d{i}"}, timeout=60)
                  for i in range(3)]
        assert [r.status_code for r in outage] == [202, 202, 202]
        waiting = sorted(i for r in outage for i in r.json()["queued"])  # in the outbox, durable with the 202
        assert len(waiting) == 3
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["broker"] != "ok"
        assert _alerts(url, dispatched=False) == 3

        server = _redis(port, tmp_path)  # back (empty: --save ''); the API's dispatcher retries with back-off
        wait_for(lambda: _alerts(url, dispatched=False) == 0, timeout=60, message="dispatched when Redis is back")
        time.sleep(3)  # a few more dispatcher rounds: nothing is sent twice
        sent = published("", db=0, port=port)
        assert sorted(sent) == waiting and set(sent.values()) == {1}, sent  # each once; "Up" went to the old one
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    finally:
        stop(api)
        stop(server)


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.mark.skipif(_pg_bin() is None or shutil.which("runuser") is None, reason="no PostgreSQL binaries")
def test_postgres_down_is_503_with_retry_after_and_nothing_half_stored(tmp_path, moto_endpoint):
    from services.storage.migrate import upgrade

    bindir, port = _pg_bin(), free_port()
    home = Path(tempfile.mkdtemp(prefix="aiops-pg-outage-"))  # outside pytest's 0700 tree: postgres must enter it
    os.chmod(home, 0o777)
    data = home / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    init = _as_postgres([f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres"])
    assert init.returncode == 0, init.stderr

    def pg(action: str) -> None:
        extra = ["-m", "immediate"] if action == "stop" else ["-w", "-o", f"-p {port} -k {home} -h 127.0.0.1"]
        result = _as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-l", str(home / "pg.log"), action, *extra])
        assert result.returncode == 0, result.stderr + (home / "pg.log").read_text()[-2000:]

    pg("start")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    api = None
    try:
        upgrade(url)
        env = api_env(database_url=url, moto_endpoint=moto_endpoint, workdir=tmp_path, broker="memory://",
                      AIOPS_RESULT_BACKEND="cache+memory://")
        api, base = start_api(env=env, workdir=tmp_path / "api", name="api")
        assert httpx.post(f"{base}/api/v1/alerts", json={"name": "Up", "node": "n1"}, timeout=60).status_code == 202

        pg("stop")
        down = httpx.post(f"{base}/api/v1/alerts", json=[{"name": "Down", "node": f"d{i}"} for i in range(5)],
                          timeout=60)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert int(down.headers["retry-after"]) > 0
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 503
        assert httpx.get(f"{base}/api/v1/incidents", timeout=30).status_code == 503

        pg("start")
        time.sleep(0.5)
        again = httpx.post(f"{base}/api/v1/alerts", json={"name": "Back", "node": "n2"}, timeout=60)
        assert again.status_code == 202, again.text
        assert _alerts(url) == 2  # the 5 refused during the outage were not half-stored
    finally:
        if api is not None:
            stop(api)
        _as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "stop", "-m", "immediate"])
        from services.storage.base import dispose

        dispose(url)
        shutil.rmtree(home, ignore_errors=True)
