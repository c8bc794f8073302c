"""Correlation: alerts of one fault on connected components join one incident, diagnosed once.

WHY: one fault alerts on more than one component. A failing disk slows the node and every service
with a replica on it; a bad deploy of a service raises the latency of its callers; Prometheus rules
fire apart, Alertmanager groups them apart (``group_by``), so every group would open its own
incident and be diagnosed, mitigated and escalated on its own. An alert whose group has no current
incident therefore first looks for an open incident opened within the correlation window whose
alerts sit on a component connected to its own in the topology (the same component, a service and
the node it runs on, a caller and its callee; up to ``hops`` steps). When one exists the alert
joins it (the earliest one, so every process picks the same parent) and the timeline says why;
the diagnoser already looks at the alerted component's neighbourhood, so the joined alert is
diagnosed with the first one instead of apart.

Several API processes: opening an incident is serialised per cluster (``lock_openings``: a
PostgreSQL transaction-level advisory lock, SQLite's single writer), so two alerts of one fault
posted to two processes at once cannot both find nothing and open two parents. Nothing waits on
the lock except requests that bring an alert new to the platform; repeats never take it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from services.incidents.models import OPEN_STATUSES, Incident, IncidentComponent
from services.storage.base import utcnow

log = logging.getLogger(__name__)


@dataclass
class Correlation:
    """How to correlate: the window (seconds, 0 = off), the topology and how many hops apart is related."""

    window_s: int = 300
    hops: int = 1
    topology: dict[str, Any] = field(default_factory=dict)


_topology_cache: dict[int, tuple[float, dict[str, Any]]] = {}
_topology_lock = threading.Lock()


def cached_topology(runtime: Any, *, ttl_s: float) -> dict[str, Any]:
    """The runtime's topology, asked at most once per ``ttl_s``; a failing source counts as "none" for
    that long too, so an unreachable source never slows every alert post."""
    key = id(runtime)
    now = time.monotonic()
    with _topology_lock:
        hit = _topology_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    topology: dict[str, Any] = {}
    method = getattr(runtime.telemetry, "topology", None)
    if method is not None:
        try:
            topology = method() or {}
        except Exception:  # correlation without the topology still joins alerts on the same component
            log.warning("topology unavailable for alert correlation", exc_info=True)
    with _topology_lock:
        _topology_cache.clear()  # one runtime per process; an old one's entry is garbage
        _topology_cache[key] = (now + ttl_s, topology)
    return topology


def lock_openings(session: Session, clusters: Iterable[str | None]) -> None:
    """Serialise opening incidents per cluster until this transaction ends (see the module docstring).

    PostgreSQL: ``pg_advisory_xact_lock`` per cluster, in sorted order (no deadlock between two
    batches of several clusters). SQLite: a write that changes nothing starts the write transaction
    now, so the reads that follow see every committed incident and no other writer commits before us.
    """
    if session.get_bind().dialect.name == "postgresql":
        for cluster in sorted({c or "-" for c in clusters}):
            digest = hashlib.sha256(f"aiops:incident-opening:{cluster}".encode()).digest()
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": int.from_bytes(digest[:8], "big", signed=True)})
    else:
        session.execute(update(Incident).where(Incident.id == -1).values(priority=Incident.priority)
                        .execution_options(synchronize_session=False))


def components(alert: Any) -> list[str]:
    """The components an alert names, most specific first (service, then node)."""
    return [c for c in dict.fromkeys([alert.service, alert.node]) if c]


def adjacency(topology: dict[str, Any]) -> dict[str, dict[str, str]]:
    """component -> {neighbour: how they relate, in words}; call edges and placement, both ways."""
    kinds = topology.get("components") or {}
    out: dict[str, dict[str, str]] = {}

    def link(a: str, b: str, words: str) -> None:
        out.setdefault(a, {}).setdefault(b, words)
        out.setdefault(b, {}).setdefault(a, words)

    for service, node in (topology.get("placement") or {}).items():
        if service and node:
            link(str(service), str(node), f"{service} runs on {node}")
    for edge in topology.get("edges") or []:
        if len(edge) < 2 or not edge[0] or not edge[1] or edge[0] == edge[1]:
            continue
        caller, callee = str(edge[0]), str(edge[1])
        runs_on = kinds.get(callee) == "node" and kinds.get(caller) != "node"
        link(caller, callee, f"{caller} runs on {callee}" if runs_on else f"{caller} calls {callee}")
    return out


def find_related(starts: list[str], targets: dict[str, Any], *, graph: dict[str, dict[str, str]],
                 hops: int) -> tuple[Any, list[str]] | None:
    """The target reached first from ``starts`` (breadth first, at most ``hops`` steps) and the path's
    steps in words; among targets at the same distance, the one with the smallest sort key wins."""
    found: list[tuple[Any, str, list[str]]] = [(targets[c], c, []) for c in starts if c in targets]
    if found:
        target, component, _ = min(found, key=lambda f: _order(f[0]))
        return target, [f"same component {component}"]
    seen = set(starts)
    frontier: deque[tuple[str, list[str]]] = deque((c, []) for c in starts)
    for _depth in range(hops):
        reached: list[tuple[Any, list[str]]] = []
        nxt: deque[tuple[str, list[str]]] = deque()
        while frontier:
            here, path = frontier.popleft()
            for neighbour, words in sorted(graph.get(here, {}).items()):
                if neighbour in seen:
                    continue
                seen.add(neighbour)
                steps = [*path, words]
                if neighbour in targets:
                    reached.append((targets[neighbour], steps))
                nxt.append((neighbour, steps))
        if reached:
            return min(reached, key=lambda r: _order(r[0]))
        frontier = nxt
    return None


def _order(target: Any) -> tuple[int, Any]:
    """Existing incidents (ids) before incidents this batch opens (its group keys), oldest first."""
    return (0, target) if isinstance(target, int) else (1, target)


def reachable(starts: Iterable[str], *, graph: dict[str, dict[str, str]], hops: int) -> set[str]:
    """The components at most ``hops`` steps from ``starts``: the only ones ``find_related`` can reach."""
    seen = set(starts)
    frontier = set(seen)
    for _depth in range(hops):
        frontier = {n for here in frontier for n in graph.get(here, {}) if n not in seen}
        seen |= frontier
    return seen


def open_components(session: Session, *, clusters: set[str | None], window_s: int,
                    only: set[str] | None = None) -> dict[str | None, dict[str, int]]:
    """cluster -> {component: the earliest open incident, opened within the window, with an alert on it};
    with ``only``, just those components (the rest of the fleet's open incidents is not read)."""
    since = utcnow() - timedelta(seconds=window_s)
    query = _OPEN_COMPONENTS if only is None else _OPEN_COMPONENTS.where(_CMP.c.component.in_(sorted(only)))
    rows = session.execute(query, {"since": since, "statuses": list(OPEN_STATUSES)}).all()
    out: dict[str | None, dict[str, int]] = {c: {} for c in clusters}
    for incident_id, cluster, component in rows:
        if cluster in out:
            out[cluster].setdefault(component, incident_id)
    return out


# one row per (component, incident) (``IncidentComponent``, kept by triggers on alerts), not per alert: an
# incident with thousands of alerts on a few components costs a few rows, read through the component index
# (this runs on every post that opens a group); Core, no ORM row objects
_INC, _CMP = Incident.__table__, IncidentComponent.__table__
_OPEN_COMPONENTS = (select(_INC.c.id, _INC.c.cluster, _CMP.c.component).distinct()
                    .select_from(_CMP.join(_INC, _CMP.c.incident_id == _INC.c.id))
                    .where(_INC.c.status.in_(bindparam("statuses", expanding=True)),
                           _INC.c.opened_at >= bindparam("since"))
                    .order_by(_INC.c.id))


@dataclass
class Plan:
    """For each group key without a current incident: join an open incident, join the incident another
    key of this batch opens, or lead (open one)."""

    joins: dict[str, tuple[int, list[str]]] = field(default_factory=dict)    # key -> (incident id, path)
    follows: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # key -> (leading key, path)
    leaders: list[str] = field(default_factory=list)


def plan_openings(session: Session, firsts: dict[str, Any], *, correlation: Correlation) -> Plan:
    """Decide, in arrival order, which of these new groups belong to an open incident or to each other."""
    result = Plan()
    if correlation.window_s <= 0:
        result.leaders = list(firsts)
        return result
    clusters = {first.cluster for first in firsts.values()}
    graph = adjacency(correlation.topology)
    near = reachable([c for first in firsts.values() for c in components(first)], graph=graph, hops=correlation.hops)
    targets: dict[str | None, dict[str, Any]] = open_components(session, clusters=clusters,
                                                                window_s=correlation.window_s, only=near)
    for key, first in firsts.items():
        starts = components(first)
        here = targets.setdefault(first.cluster, {})
        related = find_related(starts, here, graph=graph, hops=correlation.hops) if starts else None
        if related is None:
            result.leaders.append(key)
            for component in starts:
                here.setdefault(component, key)
        elif isinstance(related[0], int):
            result.joins[key] = (related[0], related[1])
        else:
            result.follows[key] = (related[0], related[1])
            for component in starts:
                here.setdefault(component, related[0])
    return result


def correlation_reason(first: Any, steps: list[str], *, incident_id: int) -> dict[str, Any]:
    """The timeline's account of one correlation: which alert, which incident, the path between them."""
    where = ", ".join(components(first)) or "no component"
    return {"incident_id": incident_id, "path": steps,
            "message": f"alert {first.name} on {where} joined incident #{incident_id}: correlated because "
                       f"{'; '.join(steps)} (one fault, diagnosed once)"}
