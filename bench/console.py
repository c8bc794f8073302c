"""Console latency at scale: ``python -m bench console [--quick] [--backend sqlite|postgres|both]``.

Seeds a fresh database (a throwaway PostgreSQL database beside ``test``, and/or a SQLite file) with
10,000 incidents, 100,000 timeline rows, 30,000 hypotheses and 1,000 drift proposals, then asks the
real app (``create_app``, every middleware, route, query and template; in-process ASGI through
Starlette's TestClient, so no network) for the operator's pages and reports the server time per
page: p50 / p95 / max over repeated requests with varied parameters. The issue's goal is
p95 < 200 ms. The first page load's size is the HTML of ``/incidents`` plus the CSS and JS it
links (raw and gzip -6, what a reverse proxy would send).

The data is synthetic but shaped like the platform's own: titles from alert names and services,
statuses mostly resolved, opened times spread over 90 days. Nothing was tuned on this bench.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import markdown_table

POSTGRES_ADMIN = os.environ.get("AIOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ALERTS = ["HighLatency", "ErrorRateHigh", "DiskErrors", "NodeNotReady", "OOMKilled", "CPUThrottling",
          "PodCrashLooping", "CertificateExpiring", "QueueBacklog", "ReplicationLag"]
CAUSES = ["cpu_saturation", "memory_leak", "disk_failure", "network_partition", "bad_deploy", "config_change",
          "dependency_down", None]
STATUSES = ["resolved"] * 14 + ["escalated", "diagnosing", "mitigating", "awaiting_approval", "open", "verifying"]
SEVERITIES = ["critical", "high", "warning", "warning", "info"]
EVENT_KINDS = ["alert", "observed", "diagnosed", "planned", "approval_requested", "approval", "acted", "verified",
               "comment", "resolved"]


def _seed(url: str, *, incidents: int, events_per: int, drifts: int, rng: random.Random) -> None:
    """Bulk rows through SQLAlchemy Core (the ORM's defaults would make this minutes, not seconds)."""
    from sqlalchemy import insert

    from services.drift.models import DriftProposal
    from services.incidents.models import Hypothesis, Incident, TimelineEvent
    from services.storage.base import session_scope

    now = datetime.now(UTC)
    services = [f"svc-{name}-{n}" for name in ("checkout", "payment", "search", "catalog", "auth") for n in range(10)]
    batch = 1000
    with session_scope(url) as session:
        for start in range(0, incidents, batch):
            rows, ids = [], range(start + 1, min(incidents, start + batch) + 1)
            for i in ids:
                service = rng.choice(services)
                node = f"node-{rng.randrange(400)}"
                alert = rng.choice(ALERTS)
                status = rng.choice(STATUSES)
                opened = now - timedelta(minutes=(incidents - i) * 90 * 24 * 60 / incidents)
                rows.append({
                    "id": i, "title": f"{alert} on {service}", "status": status, "severity": rng.choice(SEVERITIES),
                    "group_key": f"{alert}|{service}|{i}", "service": service, "node": node, "cluster": "prod",
                    "root_cause": rng.choice(CAUSES), "mitigation": None, "priority": rng.randrange(1, 6),
                    "summary": f"{alert} fired for {service} on {node}; p99 latency and error ratio moved",
                    "opened_at": opened, "updated_at": opened + timedelta(minutes=rng.randrange(1, 240)),
                    "resolved_at": opened + timedelta(minutes=30) if status == "resolved" else None})
            session.execute(insert(Incident), rows)
            session.execute(insert(TimelineEvent), [
                {"incident_id": i, "at": now - timedelta(minutes=(incidents - i) * 90 * 24 * 60 / incidents - k),
                 "kind": EVENT_KINDS[k % len(EVENT_KINDS)], "actor": "observer",
                 "message": f"step {k} of incident {i}", "data": {"step": k}}
                for i in ids for k in range(events_per)])
            session.execute(insert(Hypothesis), [
                {"incident_id": i, "root_cause": cause, "component": f"node-{i % 400}", "confidence": conf,
                 "rank": r, "evidence": [{"kind": "metric", "component": f"node-{i % 400}",
                                          "detail": f"cpu moved 0.2 -> 0.9 ({r})"}]}
                for i in ids for r, (cause, conf) in enumerate([("cpu_saturation", 0.6), ("memory_leak", 0.3),
                                                                 ("bad_deploy", 0.1)])])
        session.execute(insert(DriftProposal), [
            {"workspace": f"ws-{n % 5}", "external_id": f"p{n}", "status": rng.choice(["pending", "approved", "rejected"]),
             "title": f"aws_security_group.web_{n}: ingress changed outside Terraform",
             "diff": "--- a/main.tf\n+++ b/main.tf\n@@ -1,3 +1,3 @@\n resource {\n-  port = 80\n+  port = 8080\n }\n",
             "explanation": [], "records": [], "verification": {}, "instructions": [], "needs_person": [],
             "payload": {}, "review_comment": "", "created_at": now - timedelta(hours=n)} for n in range(drifts)])
        if url.startswith("postgresql"):  # explicit ids: move the sequences past them
            from sqlalchemy import text

            for table in ("incidents", "incident_events", "hypotheses", "drift_proposals"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
    _settle(url)


def _settle(url: str) -> None:
    """What autovacuum does after a bulk load, done now: statistics, and on PostgreSQL the GIN index's
    own counts (only VACUUM updates them; without them the planner prices the trigram index far too
    high and scans the table instead, 50 ms instead of 0.2 ms at 10k rows)."""
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE")
    finally:
        engine.dispose()


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50 ms": statistics.median(ordered), "p95 ms": p95, "max ms": ordered[-1]}


def _scenarios(rng: random.Random, incidents: int) -> list[tuple[str, Callable[[], str]]]:
    """(name, a function giving the next URL): parameters vary so no answer is cached anywhere."""
    def pick(values: list[str]) -> Callable[[], str]:
        return lambda: rng.choice(values)

    return [
        ("list, unfiltered (page 1)", lambda: "/incidents"),
        ("list, deep page (page 100..399)", lambda: f"/incidents?page={rng.randrange(100, 400)}"),
        ("list, status filter", pick(["/incidents?status=active", "/incidents?status=resolved",
                                      "/incidents?status=awaiting_approval", "/incidents?status=escalated"])),
        ("list, status + severity", pick(["/incidents?status=active&severity=critical",
                                          "/incidents?status=resolved&severity=high"])),
        ("list, service filter", lambda: f"/incidents?service=svc-payment-{rng.randrange(10)}"),
        ("list, last 24 h", pick(["/incidents?since=24h", "/incidents?since=7d&status=active"])),
        ("list, sort by severity", pick(["/incidents?sort=severity", "/incidents?sort=updated"])),
        ("search, common word", pick(["/incidents?q=latency", "/incidents?q=payment", "/incidents?q=disk"])),
        ("search, rare term", lambda: f"/incidents?q=node-{rng.randrange(400)}%3B"),
        ("search, no match", lambda: f"/incidents?q=zz{rng.randrange(10**6)}"),
        ("incident page", lambda: f"/incidents/{rng.randrange(1, incidents + 1)}"),
        ("drift list", pick(["/drift", "/drift?status=pending", "/drift?workspace=ws-3"])),
    ]


def _first_load(client) -> dict[str, object]:
    html = client.get("/incidents").content
    assets = re.findall(rb'(?:href|src)="(/static/[^"]+)"', html)
    bodies = [html] + [client.get(a.decode()).content for a in assets]
    raw = sum(len(b) for b in bodies)
    zipped = sum(len(gzip.compress(b, 6)) for b in bodies)
    return {"requests": len(bodies), "raw KB": round(raw / 1024, 1), "gzip KB": round(zipped / 1024, 1)}


def measure(url: str, *, repeats: int, incidents: int, seed: int) -> tuple[list[dict[str, object]], dict[str, object]]:
    from fastapi.testclient import TestClient

    from services.api.app import create_app
    from services.config import Settings

    settings = Settings(database_url=url, embedded=True, auth_required=False)
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    with TestClient(create_app(settings, start_workers=False)) as client:
        for name, next_url in _scenarios(rng, incidents):
            client.get(next_url())  # warm: templates compiled, connection pool filled
            samples, matched = [], []
            for _ in range(repeats):
                target = next_url()
                started = time.perf_counter()
                response = client.get(target)
                samples.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{target} answered {response.status_code}: {response.text[:300]}")
                found = re.search(rb'id="page-info">(\d+) incident', response.content)
                if found:
                    matched.append(int(found.group(1)))
            rows.append({"page": name, **_percentiles(samples),
                         "rows matched (median)": int(statistics.median(matched)) if matched else "",
                         "goal p95 < 200 ms": "met" if _percentiles(samples)["p95 ms"] < 200 else "missed"})
        first = _first_load(client)
    return rows, first


def _search_plans(url: str) -> list[dict[str, object]]:
    """How PostgreSQL runs the search's count query: the planner's own choice, and with sequential scans
    off (what the trigram index alone costs). Execution times from EXPLAIN ANALYZE, median of 5."""
    from sqlalchemy import func, select

    from services.incidents.service import incident_query
    from services.storage.base import engine_for

    engine = engine_for(url)
    rows: list[dict[str, object]] = []
    for term in ("node-17;", "zz-no-such-term", "latency"):
        stmt = select(func.count()).select_from(incident_query(q=term).subquery()).compile(engine)
        row: dict[str, object] = {"search": term}
        for label, setting in (("planner's choice", "on"), ("index forced", "off")):
            with engine.connect() as conn:
                conn.exec_driver_sql(f"SET enable_seqscan = {setting}")
                times, scan = [], ""
                for _ in range(5):
                    plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + str(stmt), stmt.params).scalar()
                    times.append(plan[0]["Execution Time"])
                    node = plan[0]["Plan"]
                    while node.get("Plans") and node["Node Type"] in {"Aggregate", "Bitmap Heap Scan"}:
                        node = node["Plans"][0]
                    scan = node["Node Type"] + (f" ({node['Index Name']})" if node.get("Index Name") else "")
                conn.exec_driver_sql("RESET enable_seqscan")
            row[f"{label}: plan"] = scan
            row[f"{label}: ms"] = statistics.median(times)
        rows.append(row)
    return rows


def _postgres_database() -> tuple[str, Callable[[], None]]:
    """A throwaway database on the shared server (never the shared ``test`` database itself)."""
    from sqlalchemy import create_engine, text

    name = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from services.storage.base import engine_for

        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    return url, drop


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench console")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--events-per-incident", type=int, default=10)
    parser.add_argument("--drifts", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=40, help="requests per page kind")
    parser.add_argument("--quick", action="store_true", help="1,000 incidents and 10 requests per page")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.incidents, args.repeats, args.drifts = 1_000, 10, 100
    from services.storage.migrate import upgrade

    sections, loads = [], []
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url, cleanup = f"sqlite:///{Path(tmp) / 'console.db'}", (lambda: None)
            else:
                url, cleanup = _postgres_database()
            try:
                upgrade(url)
                started = time.perf_counter()
                _seed(url, incidents=args.incidents, events_per=args.events_per_incident, drifts=args.drifts,
                      rng=random.Random(args.seed))
                seeded_s = time.perf_counter() - started
                rows, first = measure(url, repeats=args.repeats, incidents=args.incidents, seed=args.seed)
                plans = _search_plans(url) if backend == "postgres" else []
            finally:
                cleanup()
        sections.append(f"## {backend}: {args.incidents:,} incidents, {args.incidents * args.events_per_incident:,} "
                        f"timeline rows, {args.incidents * 3:,} hypotheses, {args.drifts:,} drift proposals "
                        f"(seeded in {seeded_s:.1f} s); {args.repeats} requests per page\n\n" + markdown_table(rows))
        if plans:
            sections.append("### PostgreSQL search plans (count query of `q`, pg_trgm GIN index from migration 0080)\n\n"
                            + markdown_table(plans))
        loads.append({"backend": backend, **first})
    head = ("Server time per page through the real app in-process (TestClient: routing, auth dependency, "
            "queries, Jinja2 rendering; no network), on a 2-core machine shared with other jobs. "
            "Goal from issue 14: p95 < 200 ms.\n")
    return head + "\n" + "\n".join(sections) + "\n## First page load (/incidents + linked CSS/JS)\n\n" + markdown_table(loads)
