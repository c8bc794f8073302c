"""Supervisor: after each diagnosis, choose the next step from the live state (AOI's scheduler).

Why a step of its own: how much to look depends on what the last look found. A confident
diagnosis goes straight to the actor; a weak one sends the observer out again with a wider scope
(more hops, a longer window); two hypotheses that score alike send it to probe exactly those two
components. Looking is bounded by a per-incident probe budget, after which the actor works with
what it has (and escalates when that is nothing). Every decision is a timeline entry with its reason.
"""

from __future__ import annotations

from typing import Any

from agents.diagnosis.case import DEFAULT_HOPS, DEFAULT_MINUTES
from agents.runbook import family_of
from agents.state import IncidentState
from agents.tools import AgentTools

# the first look is the diagnosis package's default neighbourhood; widening grows from there
DEFAULT_SCOPE = {"hops": DEFAULT_HOPS, "minutes": DEFAULT_MINUTES}
MAX_HOPS, MAX_MINUTES = 6, 240


def _label(h: dict[str, Any]) -> str:
    return f"{h.get('root_cause', '?')}" + (f" on {h['component']}" if h.get("component") else "")


def _widen(scope: dict[str, Any]) -> dict[str, Any]:
    return {"hops": min(MAX_HOPS, int(scope.get("hops", DEFAULT_SCOPE["hops"])) + 1),
            "minutes": min(MAX_MINUTES, int(scope.get("minutes", DEFAULT_SCOPE["minutes"])) * 2)}


def decide(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    """``{next, reason, scope}``: ``observe`` with a new probe scope, or ``plan``."""
    policy = tools.policy
    hypotheses = state.get("hypotheses") or []
    scope = dict(state.get("probe_scope") or DEFAULT_SCOPE)
    left = policy.probe_budget - state.get("probes", 0)
    top = hypotheses[0] if hypotheses else None
    second = hypotheses[1] if len(hypotheses) > 1 else None
    if top is not None and second is not None:
        gap = float(top.get("confidence", 0)) - float(second.get("confidence", 0))
        distinct = (top.get("component"), top.get("root_cause")) != (second.get("component"), second.get("root_cause"))
        if distinct and gap < policy.separation and float(top.get("confidence", 0)) < 0.9:
            if left > 0:
                focus = [c for c in (top.get("component"), second.get("component")) if c]
                return {"next": "observe", "scope": {**_widen(scope), "focus": sorted(set(focus))},
                        "reason": f"{_label(top)} and {_label(second)} are {gap:.2f} apart: a targeted probe "
                                  f"of {', '.join(sorted(set(focus))) or 'both'} to separate them"}
            return {"next": "plan", "scope": scope,
                    "reason": f"{_label(top)} and {_label(second)} are close but the probe budget is spent: "
                              "acting on the first, the second is next"}
    if top is None or family_of(top.get("root_cause")) is None or float(top.get("confidence", 0)) < policy.confident:
        why = ("no hypothesis" if top is None else
               f"{_label(top)} has no known fault family" if family_of(top.get("root_cause")) is None else
               f"{_label(top)} at confidence {float(top.get('confidence', 0)):.2f} < {policy.confident:.2f}")
        if left > 0:
            wider = _widen(scope)
            return {"next": "observe", "scope": wider,
                    "reason": f"{why}: the observer widens to {wider['hops']} hops, {wider['minutes']} min"}
        return {"next": "plan", "scope": scope, "reason": f"{why}; probe budget spent: the actor decides (or escalates)"}
    return {"next": "plan", "scope": scope,
            "reason": f"confident: {_label(top)} at {float(top.get('confidence', 0)):.2f}"}


def supervise(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    decision = decide(state, tools=tools)
    probes = state.get("probes", 0) + (1 if decision["next"] == "observe" else 0)
    tools.store.add_event(
        state["incident_id"], kind="scheduled", actor="supervisor", dedup_key=f"scheduled:{state.get('probes', 0)}",
        message=f"next: {decision['next']} ({decision['reason']})",
        data={"next": decision["next"], "reason": decision["reason"], "scope": decision["scope"], "probes": probes,
              "budget": tools.policy.probe_budget},
    )
    return {"schedule": {"next": decision["next"], "reason": decision["reason"]},
            "probe_scope": decision["scope"], "probes": probes}
