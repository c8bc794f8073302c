"""Observer: assembles the incident's case through read-only probes and compresses its context.

The case (``agents.diagnosis.case``) holds the alert and fault window, the topology around the
alerted component, the neighbourhood's metric/log/trace evidence against a baseline window, and
recent changes; metric series go through the memory library's change-point analysis. Anomalous
metrics also go into the compressed context as lines, so the context (and the episode) carries them.
"""

from __future__ import annotations

import math
from typing import Any

from agents.diagnosis.case import DEFAULT_HOPS, DEFAULT_MINUTES, alert_targets, gather_case
from agents.diagnosis.evidence import to_epoch
from agents.state import IncidentState
from agents.tools import AgentTools

CONTEXT_LOG_LINES_PER_COMPONENT = 400
STORED_SERIES = 12  # metric series kept on the timeline for the console's plots (largest shifts first)
STORED_CONTEXT_CHARS = 40_000


def _record(case: dict[str, Any], context: str) -> dict[str, Any]:
    """What the incident keeps of the case for people to read later: the compressed context, the
    topology around the alerted component and the series behind the largest metric shifts.

    Why on the timeline: working memory expires when the incident closes, and the case lives only
    in the graph's state; the console (and a postmortem) needs them after both are gone.
    """
    moved = sorted((e for info in case["components"].values() for e in info["metrics"] if e.get("metric")),
                   key=lambda e: -e["z"])
    series: list[dict[str, Any]] = []
    for e in moved:
        points = case["components"][e["component"]].get("points", {}).get(e["metric"])
        if points and len(series) < STORED_SERIES:
            series.append({k: e.get(k) for k in ("component", "metric", "before", "after", "at", "z", "signal")}
                          | {"points": points})
    return {
        "context": context[:STORED_CONTEXT_CHARS], "split_at": case["split_at"], "series": series,
        "topology": {"edges": case["edges"], "placement": case["placement"],
                     "alerted": case["alert_components"],
                     "components": {n: {"kind": info["kind"], "hops": info["hops"]}
                                    for n, info in case["components"].items()}},
    }


def _legacy_anomalies(case: dict[str, Any], targets: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{target: {metric: {baseline, last}}}`` for the alerted components (what older readers expect)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for target in targets:
        found = {e["metric"]: {"baseline": round(e["before"], 3), "last": round(e["after"], 3)}
                 for e in case["components"].get(target, {}).get("metrics", [])}
        if found:
            out[target] = found
    return out


# the share of the look that lies before the alert's start when the incident is looked at on time (the case's own
# convention when no start is known: the last third of the window is the fault)
BASELINE_SHARE = 2 / 3
MAX_LATE_MINUTES = 24 * 60


def covering_minutes(alert: dict[str, Any], *, minutes: int, now: float) -> int:
    """A look of ``minutes`` widened so that it still reaches a baseline before the alert's start.

    Why: the look ends now and the case splits it at the alert's start. An incident picked up late (a
    queue backlog, a worker that died, another incident's long action first) would otherwise look only at
    the fault window, with no "before" to compare against, and see nothing move on the faulty component.
    """
    start = to_epoch(alert.get("starts_at"))
    if start is None:
        return minutes
    late = min(max(0.0, (now - start) / 60), MAX_LATE_MINUTES)
    if late <= (1 - BASELINE_SHARE) * minutes:
        return minutes
    return math.ceil(late + BASELINE_SHARE * minutes)


def observe(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    alert = state["alert"]
    incident_id = state["incident_id"]
    scope = state.get("probe_scope") or {}  # the supervisor widens or focuses the look (agents/supervisor.py)
    hops, minutes = int(scope.get("hops", DEFAULT_HOPS)), int(scope.get("minutes", DEFAULT_MINUTES))
    minutes = covering_minutes(alert, minutes=minutes, now=tools.clock())
    targets = list(dict.fromkeys([*alert_targets(alert), *scope.get("focus", ())]))
    case = gather_case(tools.telemetry, alert, hops=hops, minutes=minutes)
    lines: list[str] = []
    for target in targets:  # raw log lines of the alerted (and focused) components feed the compressor
        lines.extend(list(tools.telemetry.logs(target, minutes=minutes))[-CONTEXT_LOG_LINES_PER_COMPONENT:])
    header = (f"incident: {alert.get('name')} (severity {alert.get('severity')}) on "
              f"{', '.join(targets) or 'unknown target'}: {alert.get('summary', '')}")
    moved = [e for info in case["components"].values() for e in info["metrics"][:3]]
    metric_lines = [f"metric anomaly: {e['metric']} on {e['component']} moved from {e['before']:.4g} to {e['after']:.4g}"
                    for e in sorted(moved, key=lambda e: -e["z"])[:20]]
    change_lines = [f"change: {c['detail']}" for c in case["changes"][:10]]
    context = tools.compress(incident_id, [header, *metric_lines, *change_lines, *lines])
    anomalies = _legacy_anomalies(case, targets)
    suspects = sorted(c for c, info in case["components"].items() if info["metrics"] or info["logs"])
    tools.store.add_event(
        incident_id, kind="observed", actor="observer", dedup_key="observed",
        message=(f"gathered {len(case['components'])} component(s) within {case['hops']} hops of "
                 f"{', '.join(targets) or 'no target'}; {len(suspects)} with anomalous telemetry, "
                 f"{len(case['traces'])} trace shift(s), {len(case['changes'])} change(s)"),
        data={"log_lines": len(lines), "context_chars": len(context), "anomalies": anomalies,
              "suspects": suspects[:20], "edges": len(case["edges"]), **_record(case, context)},
    )
    tools.store.update_incident(incident_id, status="diagnosing")
    return {"context": context, "signals": {"anomalies": anomalies, "log_lines": len(lines), "case": case}}
