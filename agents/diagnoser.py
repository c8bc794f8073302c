"""Diagnoser: ranks (component, fault) hypotheses from the observer's case, probes and past episodes.

The ranking lives in ``agents.diagnosis`` (evidence scoring, topology propagation, fault typing).
The signature phrase table below stays as one weak signal for the fault type, and
``rank_hypotheses`` (phrase table only) remains for states observed before cases existed.
"""

from __future__ import annotations

import logging
from typing import Any

from agents.diagnosis.rank import rank_case
from agents.state import IncidentState
from agents.tools import AgentTools

log = logging.getLogger(__name__)

# root cause -> phrases that point at it (lower case); the first matches are the strongest evidence
SIGNATURES: dict[str, tuple[str, ...]] = {
    "disk_failure": ("i/o error", "blk_update_request", "ext4-fs error", "buffer i/o", "smart", "read-only file system",
                     "timeout, aborting", "disk"),
    "kernel_hang": ("blocked for more than", "soft lockup", "hung_task", "rcu_sched", "self-detected stall",
                    "watchdog: bug", "unresponsive"),
    "network_partition": ("no route to host", "lost carrier", "tx hang", "upstream request timeout", "unreachable",
                          "connection refused", "packet loss"),
    "memory_leak": ("outofmemoryerror", "out of memory", "gc overhead", "heap space", "memory cgroup", "oom"),
    "bad_deploy": ("nullpointerexception", "rolled out", "schema mismatch", " 500 ", "does not exist", "rollout"),
    "cpu_saturation": ("pool exhausted", "slow request", "event loop lag", "throttling", "load average", "cpu"),
}


NODE_CAUSES = {"disk_failure", "kernel_hang", "network_partition"}
# what an alert's own name says about where to look (standard alerting vocabulary, not log evidence)
ALERT_HINTS: dict[str, tuple[str, ...]] = {
    "disk_failure": ("disk", "ioerror", "filesystem", "smart"),
    "kernel_hang": ("heartbeat", "unresponsive", "hung", "down"),
    "network_partition": ("heartbeat", "unreachable", "network", "down"),
    "memory_leak": ("memory", "oom"),
    "bad_deploy": ("errorrate", "5xx", "deploy"),
    "cpu_saturation": ("latency", "cpu", "saturation"),
}


def alert_scope(alert: dict[str, Any]) -> str:
    """Node-level alerts (node_exporter's job="node", or no service) point at the machine; others at the service."""
    labels = alert.get("labels") or {}
    if labels.get("job") == "node" or not alert.get("service"):
        return "node"
    return "service"


def rank_hypotheses(text: str, *, anomalies: dict[str, Any], recalled: list[dict[str, Any]],
                    alert: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Score causes by distinct signature phrases in the context, weighted by what the alert is about.

    Evidence from the logs dominates; the alert's scope halves causes of the other scope (a node alert
    whose host also runs a slow service is still about the node) and its name adds a small prior.
    """
    lowered = text.lower()
    alert = alert or {}
    scope = alert_scope(alert) if alert else None
    name = (alert.get("name") or "").lower()
    metric_names = " ".join(name for per_target in anomalies.values() for name in per_target).lower()
    scored: list[dict[str, Any]] = []
    for cause, phrases in SIGNATURES.items():
        evidence = [p for p in phrases if p in lowered]
        evidence += [f"metric:{p}" for p in phrases if p in metric_names]
        score = float(len(evidence))
        hinted = [h for h in ALERT_HINTS.get(cause, ()) if h in name]
        if hinted and score > 0:
            score += 1.0
            evidence.append(f"alert:{hinted[0]}")
        if scope is not None and (cause in NODE_CAUSES) != (scope == "node"):
            score *= 0.5
        votes = [r for r in recalled if r.get("root_cause") == cause]
        if votes:
            score += 0.5 * len(votes)
            evidence.append(f"{len(votes)} similar past episode(s)")
        if score > 0:
            scored.append({"root_cause": cause, "score": score, "evidence": evidence})
    total = sum(h["score"] for h in scored) or 1.0
    ranked = sorted(scored, key=lambda h: -h["score"])
    return [
        {"root_cause": h["root_cause"], "confidence": round(h["score"] / total, 3), "evidence": h["evidence"], "rank": i}
        for i, h in enumerate(ranked)
    ]


def _recall(state: IncidentState, *, tools: AgentTools) -> list[dict[str, Any]]:
    """Past episodes as votes; an unreachable memory (vector store down) costs the votes, not the diagnosis.

    Why not fail: recall only sharpens a ranking the telemetry already makes; an incident must not
    wait for the vector store to come back. The timeline says the diagnosis ran without memory.
    """
    if not tools.recall:
        return []
    try:
        return tools.recall(dict(state))
    except Exception as exc:  # chroma's client raises its own and httpx's errors; any of them means "no memory"
        log.warning("incident %s: memory recall unavailable: %s", state["incident_id"], exc)
        tools.store.add_event(
            state["incident_id"], kind="degraded", actor="diagnoser", dedup_key=f"degraded:recall:{state.get('probes', 0)}",
            message=f"memory recall unavailable ({type(exc).__name__}: {str(exc)[:160]}); diagnosing without past episodes",
            data={"component": "memory", "error": type(exc).__name__})
        return []


def diagnose(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    incident_id = state["incident_id"]
    alert = state["alert"]
    recalled = _recall(state, tools=tools)
    text = "\n".join([alert.get("name", ""), alert.get("summary", ""), state.get("context", "")])
    signals = state.get("signals", {})
    if "case" in signals:
        hypotheses = rank_case(signals["case"], alert=alert, recalled=recalled, context=text, signatures=SIGNATURES)
    else:
        hypotheses = rank_hypotheses(text, anomalies=signals.get("anomalies", {}), recalled=recalled, alert=alert)
    tools.store.save_hypotheses(incident_id, hypotheses)
    best = hypotheses[0] if hypotheses else None
    where = f" on {best['component']}" if best and best.get("component") else ""
    tools.store.add_event(
        incident_id, kind="diagnosed", actor="diagnoser", dedup_key="diagnosed",
        message=(f"most likely {best['root_cause']}{where} (confidence {best['confidence']:.2f})" if best
                 else "no hypothesis matched; a person must look"),
        data={"hypotheses": hypotheses[:5], "recalled": len(recalled), "llm_tokens": 0},
    )
    tools.store.update_incident(incident_id, status="mitigating", root_cause=best["root_cause"] if best else None)
    return {"hypotheses": hypotheses, "attempt": 0}
