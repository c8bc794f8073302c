"""Blast radius: who else an action hurts, and whether enough capacity is left to take the hit.

Why before the policy gate: the risk class of an action is not only the action's (a reboot is
"medium") but also its target's: rebooting the node every checkout replica depends on is riskier
than rebooting an idle one. The count of dependents raises the risk class (and so the approval
requirement); an action that would leave too little healthy capacity is refused outright.
Dependents come from the topology in the state (the observer's case: call edges and placement);
capacity from the toolbox's optional ``capacity`` hook. Without either, nothing is raised.
"""

from __future__ import annotations

from typing import Any

from agents.runbook import DISRUPTIVE
from agents.tools import RISK_ORDER, AgentTools

RISKS = sorted(RISK_ORDER, key=lambda risk: RISK_ORDER[risk])


def topology_of(state: dict[str, Any]) -> dict[str, Any]:
    """Edges (caller, callee) and placement {service: node} from wherever the state carries them."""
    case = (state.get("signals") or {}).get("case") or {}
    topo = state.get("topology") or {}
    edges = [tuple(e) for e in (topo.get("edges") or case.get("edges") or [])]
    placement = dict(topo.get("placement") or case.get("placement") or {})
    return {"edges": edges, "placement": placement}


def dependents(target: str, *, kind: str, topology: dict[str, Any]) -> list[str]:
    """Everything that calls ``target`` directly or through others; a node's hosted services count too."""
    seeds = {target}
    if kind == "node":
        seeds |= {s for s, n in topology["placement"].items() if n == target}
    callers: dict[str, set[str]] = {}
    for caller, callee in topology["edges"]:
        callers.setdefault(callee, set()).add(caller)
    seen, frontier = set(seeds), list(seeds)
    while frontier:
        for caller in callers.get(frontier.pop(), ()):
            if caller not in seen:
                seen.add(caller)
                frontier.append(caller)
    return sorted(seen - {target})


def raise_risk(risk: str, steps: int = 1) -> str:
    return RISKS[min(len(RISKS) - 1, RISK_ORDER.get(risk, 3) + steps)]


def assess(step: dict[str, Any], *, state: dict[str, Any], tools: AgentTools) -> dict[str, Any]:
    """The step's blast radius: ``{dependents, capacity, risk, raised_by, refuse}``.

    ``refuse`` is a sentence when acting would leave less than the policy's minimum healthy share.
    """
    policy = tools.policy
    out: dict[str, Any] = {"dependents": [], "capacity": None, "risk": step["risk"], "raised_by": [], "refuse": None}
    if step["action"] not in DISRUPTIVE:
        return out
    deps = dependents(step["target"], kind=step.get("target_kind", "service"), topology=topology_of(state))
    out["dependents"] = deps
    if len(deps) >= policy.blast_critical_dependents:
        out["risk"] = raise_risk(out["risk"], 2)
        out["raised_by"].append(f"{len(deps)} dependents (>= {policy.blast_critical_dependents})")
    elif len(deps) >= policy.blast_raise_dependents:
        out["risk"] = raise_risk(out["risk"])
        out["raised_by"].append(f"{len(deps)} dependents (>= {policy.blast_raise_dependents})")
    capacity = tools.capacity(step) if tools.capacity else None
    if capacity and capacity.get("total"):
        healthy, total = int(capacity.get("healthy", 0)), int(capacity["total"])
        left = healthy - 1 if capacity.get("target_healthy", True) else healthy
        out["capacity"] = {"healthy": healthy, "total": total, "left_after": left}
        if left / total < policy.min_capacity_ratio:
            out["refuse"] = (f"{step['action']} on {step['target']} would leave {left} of {total} healthy "
                             f"(policy minimum {policy.min_capacity_ratio:.0%})")
        elif left / total < policy.min_capacity_ratio + 0.25:
            out["risk"] = raise_risk(out["risk"])
            out["raised_by"].append(f"capacity after the action {left}/{total}")
    return out
