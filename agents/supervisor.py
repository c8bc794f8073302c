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


def look_of(state: IncidentState) -> dict[str, int]:
    """How much the last look saw: components, those with telemetry, evidence items, traces, changes.

    Why: a wider look is worth its round trip only while it can find more. When no component in
    the neighbourhood reports any telemetry, or the last widening came back with exactly what the
    look before it saw, another round costs time (minutes of outage) and cannot move the ranking.
    """
    case = (state.get("signals") or {}).get("case") or {}
    comps = case.get("components") or {}
    return {"components": len(comps), "with_telemetry": sum(1 for c in comps.values() if c.get("telemetry")),
            "evidence": sum(len(c.get("metrics") or []) + len(c.get("logs") or []) for c in comps.values()),
            "traces": len(case.get("traces") or []), "changes": len(case.get("changes") or [])}


def _nothing_more_to_see(state: IncidentState, look: dict[str, int]) -> str | None:
    """Why looking again cannot help, or None when it might."""
    if "components" not in ((state.get("signals") or {}).get("case") or {}):
        return None  # an observer that does not build a case: no basis to judge, keep the old behaviour
    if look["with_telemetry"] == 0:
        return "no telemetry source sees this neighbourhood, so a wider look finds nothing new"
    previous = state.get("last_look")
    if state.get("probes", 0) > 0 and previous == look:
        return "the last wider look found nothing the one before it had not"
    return None


def decide(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    """``{next, reason, scope}``: ``observe`` with a new probe scope, or ``plan``."""
    policy = tools.policy
    hypotheses = state.get("hypotheses") or []
    scope = dict(state.get("probe_scope") or DEFAULT_SCOPE)
    left = policy.probe_budget - state.get("probes", 0)
    futile = _nothing_more_to_see(state, look_of(state))
    if futile is not None and left > 0:
        left = 0
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
                    "reason": f"{_label(top)} and {_label(second)} are close but "
                              f"{futile or 'the probe budget is spent'}: acting on the first, the second is next"}
    if top is None or family_of(top.get("root_cause")) is None or float(top.get("confidence", 0)) < policy.confident:
        why = ("no hypothesis" if top is None else
               f"{_label(top)} has no known fault family" if family_of(top.get("root_cause")) is None else
               f"{_label(top)} at confidence {float(top.get('confidence', 0)):.2f} < {policy.confident:.2f}")
        if left > 0:
            wider = _widen(scope)
            return {"next": "observe", "scope": wider,
                    "reason": f"{why}: the observer widens to {wider['hops']} hops, {wider['minutes']} min"}
        return {"next": "plan", "scope": scope,
                "reason": f"{why}; {futile or 'probe budget spent'}: the actor decides (or escalates)"}
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
            "probe_scope": decision["scope"], "probes": probes, "last_look": look_of(state)}
