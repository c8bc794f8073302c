"""Actor: chooses a mitigation, passes it through the policy gate, executes it once, verifies.

Nodes here are plain functions of the state; ``graph.py`` wires them. Approval is a LangGraph
``interrupt`` so the decision can arrive minutes later from the console or Slack, in another process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from langgraph.types import interrupt

from agents.state import IncidentState
from agents.tools import AgentTools

# root cause -> (action, risk, acts on "node" or "service")
RUNBOOK: dict[str, tuple[str, str, str]] = {
    "disk_failure": ("send_to_repair", "high", "node"),
    "kernel_hang": ("reboot", "medium", "node"),
    "network_partition": ("redeploy", "medium", "node"),
    "memory_leak": ("restart_service", "low", "service"),
    "bad_deploy": ("rollback", "medium", "service"),
    "cpu_saturation": ("scale_out", "low", "service"),
}
log = logging.getLogger(__name__)
NODE_FAULTS = {"disk_failure", "kernel_hang", "network_partition"}
# actions that take the target out of rotation: success means the impact is gone, not that the node is well
REMOVES_TARGET = {"send_to_repair"}


def plan(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    hypotheses = state.get("hypotheses") or []
    attempt = state.get("attempt", 0)
    if attempt >= len(hypotheses) or attempt >= tools.policy.max_attempts:
        return {"plan": {}}
    cause = hypotheses[attempt]["root_cause"]
    action, risk, scope = RUNBOOK.get(cause, ("escalate", "critical", "node"))
    alert = state["alert"]
    target = (alert.get("node") if scope == "node" else alert.get("service")) or alert.get("node") or alert.get("service") or ""
    reason = f"runbook for {cause}"
    rec = None
    if cause in NODE_FAULTS and tools.recommend_node_action:
        rec = tools.recommend_node_action({"node": target, "root_cause": cause, "alert": alert})
        if rec and rec.get("action"):
            action, risk = rec["action"], rec.get("risk", risk)
            reason = rec.get("reason", "causal recommendation")
    step = {"action": action, "target": target, "risk": risk, "reason": reason, "root_cause": cause, "attempt": attempt}
    if cause in NODE_FAULTS and tools.recommend_node_action and rec:
        step["causal"] = {"features": rec.get("features"), "explanation": rec.get("explanation")}
    tools.store.add_event(
        state["incident_id"], kind="planned", actor="actor", dedup_key=f"planned:{attempt}",
        message=f"plan: {action} on {target or '?'} (risk {risk}; {reason})", data=step,
    )
    return {"plan": step, "approval": {}}


def approve(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    step = state["plan"]
    if not tools.policy.needs_approval(step["risk"]):
        return {"approval": {"approved": True, "by": "policy", "comment": f"risk {step['risk']} below approval threshold"}}
    incident_id = state["incident_id"]
    # side effects before interrupt() run again on resume, so both calls here are idempotent
    tools.store.request_approval(incident_id, action=step["action"], target=step["target"], risk=step["risk"],
                                 reason=step["reason"])
    tools.store.update_incident(incident_id, status="awaiting_approval")
    decision = interrupt({"kind": "approval", "plan": step})
    decision = decision if isinstance(decision, dict) else {"approved": bool(decision)}
    tools.store.update_incident(incident_id, status="mitigating" if decision.get("approved") else "escalated")
    tools.store.add_event(
        incident_id, kind="approval", actor=str(decision.get("by", "operator")), dedup_key=f"approval:{step['attempt']}",
        message=f"{'approved' if decision.get('approved') else 'rejected'} {step['action']} on {step['target']}",
        data=decision,
    )
    return {"approval": decision}


def execute(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    step, incident_id = state["plan"], state["incident_id"]
    policy = tools.policy
    if not policy.actions_enabled:
        return {"action_result": {"status": "blocked", "reason": "kill switch: actions are disabled"}}
    if tools.store.actions_in_last_hour() >= policy.max_actions_per_hour:
        return {"action_result": {"status": "blocked", "reason": f"rate limit: {policy.max_actions_per_hour} actions/hour"}}
    key = f"incident:{incident_id}:attempt:{step['attempt']}:{step['action']}:{step['target']}"
    earlier = tools.store.begin_action(key, incident_id=incident_id, kind=step["action"], target=step["target"],
                                       risk=step["risk"], params={"root_cause": step["root_cause"]})
    if earlier is not None:
        result = earlier
    else:
        try:
            result = {"status": "succeeded", **tools.cloud.execute(step["action"], step["target"], params=step)}
        except Exception as exc:  # a failed cloud call is an outcome to record, not a crash
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        tools.store.finish_action(key, status=result["status"], result=result)
    tools.store.add_event(
        incident_id, kind="executed", actor="actor", dedup_key=f"executed:{step['attempt']}",
        message=f"{step['action']} on {step['target']}: {result['status']}", data=result,
    )
    return {"action_result": result}


def _wait_for_recovery(target: str, *, tools: AgentTools) -> bool:
    """Poll the probes until the target is healthy or the policy's patience runs out."""
    deadline = time.monotonic() + tools.policy.verify_timeout_s
    while True:
        healthy = tools.telemetry.health(target)
        if healthy is None:  # no telemetry: trust the cloud's own view of the target
            healthy = tools.cloud.describe(target).get("healthy")
            if healthy is None:
                return True
        if healthy:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(tools.policy.verify_interval_s)


def verify(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    step, incident_id = state["plan"], state["incident_id"]
    result = state.get("action_result", {})
    recovered = False
    started = time.monotonic()
    if result.get("status") == "succeeded":
        recovered = step["action"] in REMOVES_TARGET or _wait_for_recovery(step["target"], tools=tools)
    if tools.record_mitigation and (step.get("causal") or {}).get("features"):
        try:
            tools.record_mitigation({"step": step, "recovered": recovered, "result": result,
                                     "verify_s": time.monotonic() - started})
        except Exception:  # learning data is best effort; the incident goes on
            log.exception("incident %s: could not record the mitigation outcome", incident_id)
    tools.store.add_event(
        incident_id, kind="verified", actor="actor", dedup_key=f"verified:{step['attempt']}",
        message=f"{step['target']} {'recovered' if recovered else 'still unhealthy'} after {step['action']}",
        data={"recovered": recovered, "action_status": result.get("status")},
    )
    return {"recovered": recovered, "attempt": state.get("attempt", 0) + (0 if recovered else 1)}


def resolve(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    incident_id = state["incident_id"]
    step = state.get("plan") or {}
    if state.get("recovered"):
        outcome, status = "resolved", "resolved"
        message = f"resolved by {step.get('action')} ({step.get('root_cause')})"
    elif state.get("approval", {}).get("approved") is False:
        outcome, status = "rejected", "escalated"
        message = "mitigation rejected by an operator; handed to a person"
    else:
        outcome, status = "escalated", "escalated"
        message = "no mitigation recovered the target; handed to a person"
    tools.store.add_event(incident_id, kind=outcome, actor="actor", dedup_key="closed", message=message,
                          data={"root_cause": step.get("root_cause"), "action": step.get("action")})
    tools.store.update_incident(incident_id, status=status, mitigation=step.get("action") if state.get("recovered") else None,
                                resolved=status == "resolved")
    if tools.on_resolved:
        try:
            tools.on_resolved({**state, "outcome": outcome})
        except Exception:  # remembering must never undo a resolution; the next upkeep repairs memory
            log.exception("incident %s: recording the episode failed", incident_id)
    return {"outcome": outcome}
