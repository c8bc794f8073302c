"""Observer: gathers the incident's raw context through read-only probes and compresses it."""

from __future__ import annotations

from typing import Any

from agents.state import IncidentState
from agents.tools import AgentTools


def _anomalies(series: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """A metric is anomalous when its last value sits far outside its own earlier spread."""
    out: dict[str, dict[str, float]] = {}
    for name, points in series.items():
        values = [float(v) for _, v in points]
        if len(values) < 4:
            continue
        head, last = values[: len(values) // 2], values[-1]
        mean = sum(head) / len(head)
        spread = (sum((v - mean) ** 2 for v in head) / len(head)) ** 0.5 or max(abs(mean) * 0.05, 1e-9)
        if abs(last - mean) / spread >= 3:
            out[name] = {"baseline": round(mean, 3), "last": round(last, 3)}
    return out


def observe(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    alert = state["alert"]
    incident_id = state["incident_id"]
    scope = state.get("probe_scope") or {}  # the supervisor widens or focuses the look (agents/supervisor.py)
    minutes = int(scope.get("minutes", 15))
    targets = list(dict.fromkeys(t for t in (alert.get("node"), alert.get("service"), *scope.get("focus", ())) if t))
    lines: list[str] = []
    anomalies: dict[str, Any] = {}
    for target in targets:
        lines.extend(tools.telemetry.logs(target, minutes=minutes))
        found = _anomalies(tools.telemetry.metrics(target, minutes=minutes))
        if found:
            anomalies[target] = found
    header = (f"incident: {alert.get('name')} (severity {alert.get('severity')}) on "
              f"{', '.join(targets) or 'unknown target'}: {alert.get('summary', '')}")
    # anomalous metrics go in as lines too, so the compressed context (and the episode) carries them
    metric_lines = [f"metric anomaly: {name} on {target} moved from {v['baseline']} to {v['last']}"
                    for target, found in anomalies.items() for name, v in found.items()]
    context = tools.compress(incident_id, [header, *metric_lines, *lines])
    tools.store.add_event(
        incident_id, kind="observed", actor="observer", dedup_key="observed",
        message=f"gathered {len(lines)} log lines and metrics for {', '.join(targets) or 'no target'}; "
                f"{len(anomalies)} target(s) with anomalous metrics",
        data={"log_lines": len(lines), "context_chars": len(context), "anomalies": anomalies},
    )
    tools.store.update_incident(incident_id, status="diagnosing")
    return {"context": context, "signals": {"anomalies": anomalies, "log_lines": len(lines)}}
