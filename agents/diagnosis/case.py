"""Assemble a case: what a person would look at for one alert.

WHY: the alerted component is rarely where a fault starts. A case holds the alert and fault
window, the topology around the alerted component (bounded hops), the metrics, logs and traces of
every component in that neighbourhood split into a baseline and a fault window, and recent
changes. Telemetry kinds beyond ``metrics``/``logs`` are optional (``getattr`` fallbacks): a
connector that cannot answer a kind gives nothing, and the case is simply thinner.

The case is a plain JSON-able dict (it lives in the checkpointed graph state), holding evidence
items rather than raw series so checkpoints stay small.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from agents.diagnosis.evidence import (
    absence_evidence,
    alert_liveness_evidence,
    change_evidence,
    fall_evidence,
    log_evidence,
    metric_evidence,
    to_epoch,
    trace_evidence,
)
from agents.diagnosis.signals import signal_kind

log = logging.getLogger(__name__)

DEFAULT_HOPS = 4
DEFAULT_MINUTES = 30
MAX_COMPONENTS = 80


def _optional(telemetry: Any, kind: str, *args: Any, default: Any, **kwargs: Any) -> Any:
    """Call an optional Telemetry kind; a missing method or a failing source answers ``default``."""
    method = getattr(telemetry, kind, None)
    if method is None:
        return default
    try:
        result = method(*args, **kwargs)
    except Exception as exc:  # a probe failure is "cannot tell", never a crash of the diagnosis
        log.warning("telemetry %s failed: %s", kind, exc)
        return default
    return default if result is None else result


def alert_targets(alert: dict[str, Any]) -> list[str]:
    """Components the alert names, most specific first (explicit component, service, node)."""
    found = [alert.get("component"), alert.get("service"), alert.get("node")]
    return list(dict.fromkeys(str(t) for t in found if t))


def neighbourhood(topology: dict[str, Any], targets: list[str], *, hops: int) -> dict[str, int]:
    """Components within ``hops`` of the targets (edges taken both ways, placement included), with their distance.

    Without edges, or when the alerted component is on none of them, the topology's component list is
    the neighbourhood: every known component is a suspect when nothing says how they connect to it.
    """
    adjacency: dict[str, set[str]] = {}
    for caller, callee in topology.get("edges", []):
        adjacency.setdefault(caller, set()).add(callee)
        adjacency.setdefault(callee, set()).add(caller)
    for service, node in (topology.get("placement") or {}).items():
        adjacency.setdefault(service, set()).add(node)
        adjacency.setdefault(node, set()).add(service)
    dist = {t: 0 for t in targets}
    queue = deque(targets)
    while queue:
        here = queue.popleft()
        if dist[here] >= hops:
            continue
        for nxt in sorted(adjacency.get(here, ())):
            if nxt not in dist:
                dist[nxt] = dist[here] + 1
                queue.append(nxt)
    if not topology.get("edges") or not any(t in adjacency for t in targets):
        # no call graph, or one the alerted component is not on (an untraced entry): everything known is a suspect
        for name in [*(topology.get("components") or {}), *sorted(adjacency)]:
            dist.setdefault(name, 1)
    return dict(list(dist.items())[:MAX_COMPONENTS])


NODE_JOBS = {"node", "node-exporter", "node_exporter", "host", "windows-exporter"}


def alert_subject(alert: dict[str, Any]) -> str:
    """What the alert is about: its node when the rule watches the machine (node_exporter's ``job``), else
    the most specific component it names."""
    job = str((alert.get("labels") or {}).get("job") or "").lower()
    if alert.get("node") and job in NODE_JOBS:
        return str(alert["node"])
    targets = alert_targets(alert)
    return targets[0] if targets else ""


def implied_placement(topology: dict[str, Any], alert: dict[str, Any]) -> None:
    """An alert labelled with both a service and a node says the service runs there (Prometheus
    ``instance``/``node`` + ``service`` labels): record it when the topology does not place the service."""
    service, node = alert.get("service"), alert.get("node")
    if service and node and service != node and service not in topology["placement"]:
        topology["placement"][str(service)] = str(node)


def _component_kind(name: str, alert: dict[str, Any], topology: dict[str, Any]) -> str:
    declared = (topology.get("components") or {}).get(name)
    if declared:
        return str(declared)
    if name == alert.get("node") or name in set((topology.get("placement") or {}).values()):
        return "node"
    return "service"


PLOT_POINTS = 120


def thin(points: Any, *, limit: int = PLOT_POINTS) -> list[list[float]]:
    """At most ``limit`` (time, value) pairs of a series, evenly spaced, first and last kept; None/NaN dropped."""
    clean = [[float(t), float(v)] for t, v in points if v is not None and float(v) == float(v)]
    if len(clean) <= limit:
        return clean
    step = (len(clean) - 1) / (limit - 1)
    return [clean[round(i * step)] for i in range(limit)]


def gather_case(telemetry: Any, alert: dict[str, Any], *, hops: int = DEFAULT_HOPS,
                minutes: int = DEFAULT_MINUTES) -> dict[str, Any]:
    """Probe the alerted component's neighbourhood and return the case (see module docstring)."""
    targets = alert_targets(alert)
    topology = _optional(telemetry, "topology", default={}) or {}
    topology = {"edges": [list(e) for e in topology.get("edges", [])], "placement": dict(topology.get("placement") or {}),
                "components": dict(topology.get("components") or {})}
    implied_placement(topology, alert)
    near = neighbourhood(topology, targets, hops=hops)
    raw_metrics = {c: _optional(telemetry, "metrics", c, minutes=minutes, default={}) for c in near}
    split_at = to_epoch(alert.get("starts_at") or alert.get("time"))
    if split_at is None:  # no alert time: the last third of what the probes returned is the fault window
        stamps = sorted(t for series in raw_metrics.values() for points in series.values() for t, _ in points)
        split_at = stamps[0] + 2 * (stamps[-1] - stamps[0]) / 3 if stamps else 0.0
    steps = [b[0] - a[0] for series in raw_metrics.values() for points in series.values()
             for a, b in zip(points, points[1:], strict=False) if b[0] > a[0]]
    step_s = sorted(steps)[len(steps) // 2] if steps else 60.0
    # a component can only be seen to go silent when someone else still reports inside the fault window
    others_report = any(t >= split_at for series in raw_metrics.values() for points in series.values() for t, _ in points)
    components: dict[str, dict[str, Any]] = {}
    for name, hop in near.items():
        series = raw_metrics[name]
        lines = list(_optional(telemetry, "logs", name, minutes=minutes, default=[]))
        metrics = [e for e in (metric_evidence(name, m, pts, split_at=split_at) for m, pts in series.items()) if e]
        silent = absence_evidence(name, series, split_at=split_at) if others_report else None
        metrics += [silent] if silent else []
        # a component that stopped reporting: which of its CPU series fell says which kind of silence it is
        lost = any(e.get("signal") == "liveness" for e in metrics)
        idle = [e for e in (fall_evidence(name, m, pts, split_at=split_at) for m, pts in series.items()
                            if lost and signal_kind(m) == "cpu") if e]
        components[name] = {
            "kind": _component_kind(name, alert, topology), "hops": hop,
            "telemetry": bool(series) or bool(lines), "series": len(series), "log_lines": len(lines),
            "metrics": sorted(metrics, key=lambda e: -e["z"]), "logs": log_evidence(name, lines, split_at=split_at),
            **({"fell": idle} if idle else {}),
            # the series behind each metric item, thinned: what a person looks at to believe the item
            "points": {e["metric"]: thin(series[e["metric"]]) for e in metrics if e.get("metric") in series},
        }
    subject = alert_subject(alert)
    said = alert_liveness_evidence(alert, subject) if subject in components else None
    if said and not any(e.get("signal") == "liveness" for e in components[subject]["metrics"]):
        components[subject]["alerts"] = [said]
        # the alert says it stopped reporting: which of its CPU series fell says which kind of silence it is
        idle = [e for e in (fall_evidence(subject, m, pts, split_at=split_at)
                            for m, pts in raw_metrics[subject].items() if signal_kind(m) == "cpu") if e]
        if idle:
            components[subject]["fell"] = idle
    traces: list[dict[str, Any]] = []
    seen_edges: set[tuple[str, str]] = set()
    for name in near:
        for stats in _optional(telemetry, "traces", name, minutes=minutes, default=[]):
            edge = (str(stats.get("caller")), str(stats.get("callee")))
            if edge not in seen_edges:
                seen_edges.add(edge)
                traces.extend(trace_evidence(stats, split_at=split_at))
                if list(edge) not in topology["edges"]:
                    topology["edges"].append(list(edge))  # traces reveal call edges the topology lacked
    changes = [change_evidence(c) for c in _optional(telemetry, "changes", minutes=minutes, default=[])]
    return {
        "alert_components": targets, "split_at": split_at, "step_s": step_s, "hops": hops,
        "edges": [e for e in topology["edges"] if e[0] in components and e[1] in components],
        "placement": {s: n for s, n in topology["placement"].items() if s in components},
        "components": components, "traces": traces,
        "changes": [c for c in changes if not c["component"] or c["component"] in components],
    }
