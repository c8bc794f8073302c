"""API processes for multi-process tests: the environment they share, start, stop, post to them.

WHY one module: several tests run two ``aiops api`` processes on one PostgreSQL and one Redis
prefix; they must build the same environment (no shared files, moto as the cloud, the hashing
embedder), and a setting added for one should reach all of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import redis

from tests.conftest import REDIS_URL, ROOT, free_port, wait_for

BROKER_DB = 12  # the Redis database these tests use, under a per-test key prefix


def api_env(*, database_url: str, moto_endpoint: str, workdir: Path, prefix: str | None = None,
            broker: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of API processes that share ``database_url`` and the broker keys under ``prefix``.

    ``broker`` defaults to the shared Redis; outage tests pass their own throwaway one (no prefix needed).
    """
    broker = broker or f"{REDIS_URL}/{BROKER_DB}"
    keys = {"AIOPS_BROKER_KEY_PREFIX": prefix} if prefix is not None else {}
    return {**os.environ, "AIOPS_DATABASE_URL": database_url, "AIOPS_BROKER_URL": broker,
            "AIOPS_RESULT_BACKEND": broker, **keys,
            "AIOPS_CLOUD_ENDPOINT": moto_endpoint, "AIOPS_CHROMA_PATH": str(workdir / "chroma"),
            "AIOPS_EMBEDDING": "hashing", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def drop_broker_keys(prefix: str, *, db: int = BROKER_DB) -> None:
    """Remove what the processes left in Redis database ``db`` under ``prefix``."""
    client = redis.Redis.from_url(f"{REDIS_URL}/{db}")
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def start_api(*, env: dict[str, str], workdir: Path, name: str) -> tuple[subprocess.Popen, str]:
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


def ready(base: str) -> bool:
    """Whether the API at ``base`` says it is ready (/readyz 200); False while it is not answering."""
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(proc: subprocess.Popen) -> None:
    stop_all([proc])


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every process group at once, then wait; SIGKILL what is still up after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
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


def post_all(bases: list[str], bodies: list[tuple[int, dict]]) -> list[int]:
    """POST each ``(process index, alert)`` to that process's alert endpoint, 32 at a time; the statuses."""
    return asyncio.run(_post_all(bases, bodies))
