"""Keep a bounded recent window of spans per service; derive call edges and their latency/error series.

An edge caller -> callee is a span whose parent span belongs to another service (the usual client
span -> server span pair), or a client span naming a peer no instrumented service answered for
(a database, a queue, an external API: ``peer.service``, ``db.system``, ``server.address``, ...).
An edge's latency is the caller's client span when there is one (what the caller waited, network
included), else the callee's server span; it failed when either side says so.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.storage.base import rows_matched, session_scope
from services.storage.upsert import insert_new
from services.traces.models import TraceSpan

CLIENT, PRODUCER = 3, 4
BATCH = 500


def store_spans(session: Session, spans: list[dict[str, Any]], *, retention_minutes: float,
                max_per_service: int, now: float | None = None) -> dict[str, int]:
    """Insert new spans (a retried export is stored once), then trim each touched service's window."""
    stored = 0
    for i in range(0, len(spans), BATCH):
        stored += insert_new(session, TraceSpan, rows=spans[i:i + BATCH], keys=["trace_id", "span_id"])
    cutoff = (now or time.time()) - retention_minutes * 60
    trimmed = 0
    for service in sorted({s["service"] for s in spans}):
        trimmed += rows_matched(session,
            delete(TraceSpan).where(TraceSpan.service == service, TraceSpan.start < cutoff))
        oldest_kept = session.scalar(select(TraceSpan.start).where(TraceSpan.service == service)
                                     .order_by(TraceSpan.start.desc()).offset(max_per_service - 1).limit(1))
        if oldest_kept is not None:
            trimmed += rows_matched(session,
                delete(TraceSpan).where(TraceSpan.service == service, TraceSpan.start < oldest_kept))
    return {"spans": len(spans), "stored": stored, "duplicates": len(spans) - stored, "trimmed": trimmed}


def _calls(database_url: str, *, minutes: float, now: float | None = None) -> tuple[dict, dict[str, str]]:
    """``{(caller, callee): [(start, latency_s, error)]}`` and ``{service: host}`` over the window."""
    since = (now or time.time()) - minutes * 60
    with session_scope(database_url) as session:
        rows = session.execute(select(TraceSpan.trace_id, TraceSpan.span_id, TraceSpan.parent_span_id,
                                      TraceSpan.service, TraceSpan.host, TraceSpan.kind, TraceSpan.peer,
                                      TraceSpan.start, TraceSpan.duration_s, TraceSpan.error)
                               .where(TraceSpan.start >= since).order_by(TraceSpan.start)).all()
    by_id = {(r.trace_id, r.span_id): r for r in rows}
    edges: dict[tuple[str, str], list[tuple[float, float, bool]]] = defaultdict(list)
    answered: set[tuple[str, str]] = set()
    placement: dict[str, str] = {}
    for r in rows:
        if r.host:
            placement[r.service] = r.host  # rows go oldest first: the latest host wins
        parent = by_id.get((r.trace_id, r.parent_span_id)) if r.parent_span_id else None
        if parent is None or parent.service == r.service:
            continue
        answered.add((parent.trace_id, parent.span_id))
        client = parent.kind in {CLIENT, PRODUCER}
        edges[(parent.service, r.service)].append(
            (r.start, parent.duration_s if client else r.duration_s, bool(r.error or (client and parent.error))))
    for r in rows:
        if r.kind == CLIENT and r.peer and r.peer != r.service and (r.trace_id, r.span_id) not in answered:
            edges[(r.service, r.peer)].append((r.start, r.duration_s, bool(r.error)))
    return edges, placement


def _series(calls: list[tuple[float, float, bool]], *, step_s: float) -> tuple[list, list]:
    """Per-bucket p95 latency (seconds) and error share, bucket start times as epoch seconds."""
    buckets: dict[float, list[tuple[float, bool]]] = defaultdict(list)
    for start, seconds, failed in calls:
        buckets[math.floor(start / step_s) * step_s].append((seconds, failed))
    latency: list[tuple[float, float]] = []
    errors: list[tuple[float, float]] = []
    for t in sorted(buckets):
        values = sorted(v for v, _ in buckets[t])
        latency.append((t, values[max(0, math.ceil(0.95 * len(values)) - 1)]))
        errors.append((t, sum(1 for _, e in buckets[t] if e) / len(buckets[t])))
    return latency, errors


def trace_edges(database_url: str, target: str | None = None, *, minutes: float = 15,
                now: float | None = None) -> list[dict[str, Any]]:
    """``Telemetry.traces``: edges touching ``target`` (all when None) with latency and error-share series."""
    edges, _ = _calls(database_url, minutes=minutes, now=now)
    step = max(10.0, minutes * 60 / 30)
    out = []
    for (caller, callee), calls in sorted(edges.items()):
        if target and target not in (caller, callee):
            continue
        latency, errors = _series(calls, step_s=step)
        out.append({"caller": caller, "callee": callee, "latency": latency, "errors": errors, "calls": len(calls),
                    "error_rate": round(sum(1 for c in calls if c[2]) / len(calls), 4)})
    return out


def trace_topology(database_url: str, *, minutes: float = 60, now: float | None = None) -> dict[str, Any]:
    """``Telemetry.topology`` from the stored spans: call edges, service -> host, components."""
    edges, placement = _calls(database_url, minutes=minutes, now=now)
    if not edges and not placement:
        return {}
    components = {name: "service" for edge in edges for name in edge}
    components.update({host: "node" for host in placement.values()})
    return {"edges": [list(e) for e in sorted(edges)], "placement": placement, "components": components}
