"""Ingest throughput: the project's API against a bare FastAPI app, same load, same server settings.

``python -m bench ingest [--posts 5000] [--concurrency 32] [--backends sqlite,postgres]``

Each target runs as its own ``uvicorn`` process (one worker, access log off) in its own temporary
working directory; a lean keep-alive HTTP/1.1 client (``Connection``, on uvloop) posts at a fixed
concurrency, single alerts and Alertmanager-style batches of 10, while a probe times ``/healthz``
every 20 ms. The client's own CPU per post is reported: it must stay well under the servers', or
the figure is the client's (as it was with httpx, which capped both apps near 300-450 posts/s). Afterwards the
alerts are counted in the database: ``lost`` = sent but not stored, ``duplicated`` = stored twice.
The project runs in distributed mode with no worker consuming (Redis broker, own key prefix), so
the figure is the API's own ingest cost, not the agents'. Alerts are all distinct, spread over
200 groups (new alerts keep joining open incidents, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import PROJECT_ROOT, markdown_table

POSTGRES_URL = os.environ.get("AIOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AIOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
BARE_APP = '''
import json
from fastapi import FastAPI, Request
app = FastAPI()

@app.get("/healthz")
def healthz():
    return {"status": "ok"}

@app.post("/api/v1/alerts", status_code=202)
async def ingest(request: Request):
    payload = json.loads(await request.body())
    return {"accepted": len(payload.get("alerts", [payload]))}
'''

# the simplest correct durable ingest: the same body parsing, each post's alerts inserted in a transaction of
# its own and committed before the 202 (threadpool, the project's engine settings); no normalising,
# correlation, incidents, audit or outbox. What a post costs once it must be on disk before its reply.
BARE_DURABLE_APP = '''
import json, os
from fastapi import FastAPI, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from services.storage.base import make_engine

app = FastAPI()
engine = make_engine(os.environ["AIOPS_DATABASE_URL"])
key = "INTEGER PRIMARY KEY" if engine.dialect.name == "sqlite" else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
with engine.begin() as conn:
    conn.execute(text(f"CREATE TABLE IF NOT EXISTS bare_alerts (id {key}, name VARCHAR(200), body TEXT)"))
INSERT = text("INSERT INTO bare_alerts (name, body) VALUES (:name, :body)")

@app.get("/healthz")
def healthz():
    return {"status": "ok"}

def store(alerts):
    with engine.begin() as conn:
        conn.execute(INSERT, [{"name": a.get("name") or a.get("labels", {}).get("alertname"), "body": json.dumps(a)}
                              for a in alerts])

@app.post("/api/v1/alerts", status_code=202)
async def ingest(request: Request):
    payload = json.loads(await request.body())
    alerts = payload.get("alerts", [payload])
    await run_in_threadpool(store, alerts)
    return {"accepted": len(alerts)}
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A uvicorn process serving ``target`` (``module:attr``; ``--factory`` for the project)."""

    def __init__(self, target: str, *, env: dict[str, str], workdir: Path, factory: bool = False) -> None:
        import httpx

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "30", *(["--factory"] if factory else [])]
        self.log = workdir / "server.log"
        self.proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{target} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"{target} did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


DURABLE = "bare durable"
GROUPS = 200  # distinct incident groups per run: new alerts keep joining open incidents, as in production


def _names(i: int, batch: int, run: str) -> list[str]:
    return [f"cpu-high-{run}-{i}"] if batch == 1 else [f"err-{run}-{i}-{k}" for k in range(batch)]


def _payload(i: int, batch: int, run: str) -> dict:
    group = i % GROUPS
    if batch == 1:
        return {"name": f"cpu-high-{run}-{i}", "node": f"node-{group}", "severity": "high", "summary": "CPU above 95%"}
    return {"version": "4", "groupKey": f"{run}/{group}", "status": "firing",
            "commonLabels": {"cluster": "bench", "severity": "warning"},
            "alerts": [{"status": "firing", "labels": {"alertname": f"err-{run}-{i}-{k}", "service": f"svc-{group}",
                                                       "instance": f"node-{group}-{k}"},
                        "annotations": {"summary": "error rate above 5%"}, "startsAt": "2026-11-30T10:00:00Z"}
                       for k in range(batch)]}


# what a request on a broken or misbehaving connection raises (counted by name as its status)
BROKEN = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class Connection:
    """A minimal HTTP/1.1 keep-alive client connection: the load must cost the client far less than the server.

    httpx spent 2-3 ms of client CPU per post here, more than either server, so the old figures measured
    the client (its cost even moved with the server's latency pattern: a bare app that slept 5 ms per
    request scored the same as the project). This one writes a prepared request and reads the status line,
    the headers and a Content-Length body: about a tenth of that.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                + (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body or method == "POST" else "")
                + "\r\n").encode()
        try:
            self.writer.write(head + body)
            headers = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(headers[0].split(" ", 2)[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in headers[1:] if h)}
            await self.reader.readexactly(int(fields.get("content-length", "0")))
        except BROKEN:
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _load(base: str, *, posts: int, batch: int, concurrency: int, run: str) -> dict:
    import orjson

    host, port = base.rsplit("//", 1)[1].rsplit(":", 1)
    latencies, health, codes, acknowledged = [], [], {}, []
    done = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(posts):
        queue.put_nowait(i)

    async def worker() -> None:
        conn = Connection(host, int(port))
        try:
            while not queue.empty():
                i = queue.get_nowait()
                body = orjson.dumps(_payload(i, batch, run))
                started = time.perf_counter()
                try:
                    status: int | str = await conn.request("POST", "/api/v1/alerts", body)
                except BROKEN as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                codes[status] = codes.get(status, 0) + 1
                if status == 202:
                    acknowledged.extend(_names(i, batch, run))
        finally:
            conn.close()

    async def probe() -> None:
        conn = Connection(host, int(port))
        try:
            while not done.is_set():
                started = time.perf_counter()
                await conn.request("GET", "/healthz")
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)
        finally:
            conn.close()

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    done.set()
    await prober
    q = statistics.quantiles(latencies, n=100)
    hq = statistics.quantiles(health, n=100) if len(health) > 2 else [float("nan")] * 99
    return {"elapsed": elapsed, "req_s": posts / elapsed, "alerts_s": posts * batch / elapsed,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "healthz_p99_ms": hq[98] * 1000, "codes": codes,
            "acknowledged": acknowledged}


def _run_load(base: str, **kwargs) -> tuple[dict, float]:
    """The load in this process's own event loop (uvloop, as the servers), and the client's CPU seconds."""
    import uvloop

    started = time.process_time()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_load(base, **kwargs))
    return result, time.process_time() - started


def _count(url: str, run: str, acknowledged: list[str]) -> tuple[int, int]:
    """(alerts acknowledged with 202 but not stored, rows stored more than once) for this run."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = [r[0] for r in conn.execute(text("SELECT name FROM alerts WHERE name LIKE :p"), {"p": f"%-{run}-%"})]
        return len(set(acknowledged) - set(names)), len(names) - len(set(names))
    finally:
        engine.dispose()


def _database(backend: str, workdir: Path) -> tuple[str, callable]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'aiops.db'}", lambda: None
    import psycopg

    name = f"aiops_bench_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", drop


def run_backend(backend: str, *, posts: int, concurrency: int, batches: list[int]) -> list[dict]:
    from services.storage.migrate import upgrade

    rows = []
    with tempfile.TemporaryDirectory(prefix=f"bench-ingest-{backend}-") as tmp:
        root = Path(tmp)
        url, drop = _database(backend, root)
        prefix = f"aiops-bench-{uuid.uuid4().hex[:8]}:"
        try:
            upgrade(url)
            env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "AIOPS_DATABASE_URL": url,
                   "AIOPS_BROKER_URL": f"{REDIS_URL}/13", "AIOPS_RESULT_BACKEND": f"{REDIS_URL}/13",
                   "AIOPS_BROKER_KEY_PREFIX": prefix, "AIOPS_CHROMA_PATH": str(root / "chroma"),
                   "AIOPS_EMBEDDING": "hashing", "AIOPS_CLOUD_IS_SIMULATOR": "true",
                   "AIOPS_CLOUD_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing"}
            (root / "bare").mkdir()
            (root / "bare" / "bare_ingest.py").write_text(BARE_APP)
            (root / "durable").mkdir()
            (root / "durable" / "bare_durable.py").write_text(BARE_DURABLE_APP)
            (root / "project").mkdir()
            for label, target, factory, workdir in (("bare FastAPI", "bare_ingest:app", False, root / "bare"),
                                                    (DURABLE, "bare_durable:app", False, root / "durable"),
                                                    ("project", "services.api.app:create_app", True, root / "project")):
                server = Server(target, env=env, workdir=workdir, factory=factory)
                try:
                    for batch in batches:
                        run = uuid.uuid4().hex[:6]
                        cpu0 = _cpu_seconds(server.proc.pid)
                        result, client_cpu = _run_load(server.base, posts=posts, batch=batch,
                                                       concurrency=concurrency, run=run)
                        cpu = _cpu_seconds(server.proc.pid) - cpu0
                        row = {"backend": backend if backend == "sqlite" else "postgres+redis", "app": label,
                               "alerts/post": batch, "posts": posts, "req/s": result["req_s"],
                               "alerts/s": result["alerts_s"], "p50 ms": result["p50_ms"], "p99 ms": result["p99_ms"],
                               "healthz p99 ms": result["healthz_p99_ms"], "API CPU ms/req": cpu / posts * 1000,
                               "client CPU ms/req": client_cpu / posts * 1000,
                               "non-202": ", ".join(f"{k}: {v}" for k, v in sorted(result["codes"].items(), key=str)
                                                    if k != 202) or 0,
                               "lost": "-", "duplicated": "-"}
                        if label == "project":
                            row["lost"], row["duplicated"] = _count(url, run, result["acknowledged"])
                        rows.append(row)
                        print(row, flush=True)
                        if row["non-202"]:
                            errors = [ln for ln in server.log.read_text().splitlines() if "Error" in ln or "error" in ln]
                            print("\n".join(errors[-15:]), file=sys.stderr, flush=True)
                finally:
                    server.stop()
        finally:
            _cleanup_redis(prefix)
            drop()
    return rows


def _cleanup_redis(prefix: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(f"{REDIS_URL}/13")
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    except Exception:  # noqa: BLE001 - best effort; the keys carry a unique prefix
        pass


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench ingest")
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--batches", default="1,10", help="alerts per post, comma-separated")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    rows, loads = [], [os.getloadavg()[0]]
    for backend in args.backends.split(","):
        rows += run_backend(backend, posts=args.posts, concurrency=args.concurrency, batches=batches)
        loads.append(os.getloadavg()[0])
    ratios = []
    for row in rows:
        if row["app"] != "project":
            continue
        bare, durable = (next(r for r in rows if r["app"] == app and r["backend"] == row["backend"]
                              and r["alerts/post"] == row["alerts/post"]) for app in ("bare FastAPI", DURABLE))
        ratios.append({"backend": row["backend"], "alerts/post": row["alerts/post"],
                       "throughput vs bare": row["req/s"] / bare["req/s"], "p99 vs bare": row["p99 ms"] / bare["p99 ms"],
                       "throughput vs bare durable": row["req/s"] / durable["req/s"],
                       "p99 vs bare durable": row["p99 ms"] / durable["p99 ms"],
                       "alerts/s": row["alerts/s"], "healthz p99 ms": row["healthz p99 ms"],
                       "bare healthz p99 ms": bare["healthz p99 ms"], "lost": row["lost"],
                       "duplicated": row["duplicated"]})
    return (f"{args.posts} posts per run at concurrency {args.concurrency}; one uvicorn worker per app (keep-alive 30 s), access log "
            f"off; the project in distributed mode (Redis broker, no worker consuming); {GROUPS} incident groups; "
            "every alert distinct. `lost` = acknowledged with 202 but not in the database. The load client (a lean "
            "HTTP/1.1 keep-alive client on uvloop; its CPU per post is in the table) runs on "
            f"the same machine ({os.cpu_count()} CPUs, shared with other jobs): load average (1 min) at the start and "
            f"after each backend: {', '.join(f'{v:.1f}' for v in loads)}.\n\n"
            + markdown_table(rows) + "\n## Against the bare app\n\n" + markdown_table(ratios)
            + f"\n`{DURABLE}` is the same bare app storing each post's alerts in a transaction of its own before "
              "the 202 (no normalising, correlation, incidents, audit or outbox): the least a durable post costs.\n"
            + "\nGoals (issue 10): throughput >= 0.7x bare, p99 <= 2x bare, >= 2,000 alerts/s with batches on "
              "PostgreSQL, /healthz p99 < 50 ms, 0 lost, 0 duplicated.\n")
