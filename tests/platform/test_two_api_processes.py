"""Exactly one incident per group, and one alert per fingerprint, with two API processes on one
PostgreSQL: the same new groups posted concurrently to both, counted in the database afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest
import redis
from sqlalchemy import func, select

from tests.conftest import REDIS_URL, ROOT, free_port, wait_for
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GROUPS = 300


def start_api(*, env: dict[str, str], workdir, name: str) -> tuple[subprocess.Popen, str]:
    """One ``aiops api`` process in its own working directory (no shared files, no .env)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / f"{name}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "services", "api", "--port", str(port)], cwd=workdir, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None and (_ for _ in ()).throw(AssertionError((workdir / f"{name}.log").read_text()))

    wait_for(ready, timeout=90, message=f"{name} up")
    return proc, base


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def _post_all(bases: list[str], bodies: list[tuple[int, dict]]) -> list[int]:
    limits = asyncio.Semaphore(32)
    async with httpx.AsyncClient(timeout=60) as client:
        async def one(target: int, body: dict) -> int:
            async with limits:
                return (await client.post(f"{bases[target]}/api/v1/alerts", json=body)).status_code
        return await asyncio.gather(*(one(t, b) for t, b in bodies))


def test_two_api_processes_open_one_incident_per_group(tmp_path, moto_endpoint):
    from services.alerts.models import Alert
    from services.incidents.models import Incident
    from services.storage.base import session_scope
    from services.storage.migrate import upgrade

    prefix = f"aiops-safe-{uuid.uuid4().hex[:8]}:"
    with fresh_postgres("aiops_two_api") as url:
        upgrade(url)
        env = {**os.environ, "AIOPS_DATABASE_URL": url, "AIOPS_BROKER_URL": f"{REDIS_URL}/12",
               "AIOPS_RESULT_BACKEND": f"{REDIS_URL}/12", "AIOPS_BROKER_KEY_PREFIX": prefix,
               "AIOPS_CLOUD_ENDPOINT": moto_endpoint, "AIOPS_CHROMA_PATH": str(tmp_path / "chroma"),
               "AIOPS_EMBEDDING": "hashing", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        procs = []
        try:
            for i in range(2):
                proc, base = start_api(env=env, workdir=tmp_path / f"api{i}", name=f"api{i}")
                procs.append((proc, base))
            bases = [b for _, b in procs]
            bodies = []
            for g in range(GROUPS):  # each group: the same alert to both, and a second alert of the group to both
                for name in ("A", "B"):
                    body = {"name": name, "node": f"node-{g}", "severity": "high"}
                    bodies += [(0, body), (1, body)]
            statuses = asyncio.run(_post_all(bases, bodies))
        finally:
            for proc, _ in procs:
                stop(proc)
            client = redis.Redis.from_url(f"{REDIS_URL}/12")
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        assert statuses.count(202) == len(bodies), {s: statuses.count(s) for s in set(statuses)}
        with session_scope(url) as session:
            incidents = session.scalar(select(func.count(Incident.id)))
            per_group = session.execute(select(Incident.group_key, func.count()).group_by(Incident.group_key)
                                        .having(func.count() > 1)).all()
            alerts = session.scalar(select(func.count(Alert.id)))
            received = session.scalar(select(func.sum(Alert.count)))
            unattached = session.scalar(select(func.count(Alert.id)).where(Alert.incident_id.is_(None)))
        assert per_group == [] and incidents == GROUPS
        assert alerts == 2 * GROUPS and received == 4 * GROUPS and unattached == 0
