"""Actor: acts on the diagnosed component, through the policy gate, once, and verifies without waiting.

Nodes here are plain functions of the state; ``graph.py`` wires them. Approval is a LangGraph
``interrupt`` so the decision can arrive minutes later from the console or Slack, in another
process. Verification is one probe per node run: when the target is not healthy yet and the
deadline has not passed, the graph pauses before ``verify`` again and whoever drives it (a
delayed Celery task in production, a loop in tests) comes back later; no thread ever sleeps here.
"""

from __future__ import annotations

import logging
from typing import Any

from langgraph.types import interrupt

from agents import blast, runbook
from agents.state import IncidentState
from agents.tools import AgentTools

log = logging.getLogger(__name__)
# actions that take the target out of rotation: success means the impact is gone, not that the node is well
REMOVES_TARGET = {"send_to_repair", "replace"}


def _source_resolved(tools: AgentTools, incident_id: int) -> dict[str, Any] | None:
    """The source's view: ``{firing, resolved, ended_at}`` when every alert of the incident has resolved."""
    status = getattr(tools.store, "source_status", None)
    if status is None:
        return None
    seen = status(incident_id) or {}
    return seen if seen.get("resolved") and not seen.get("firing") else None


def probe_health(target: str, *, tools: AgentTools) -> bool | None:
    """One read-only look: telemetry first, the cloud's own view second, None when neither can tell."""
    healthy = tools.telemetry.health(target)
    if healthy is None:
        try:
            healthy = tools.cloud.describe(target).get("healthy")
        except Exception:  # a describe that fails says nothing about health
            log.warning("describe %s failed during a health probe", target, exc_info=True)
            healthy = None
    return healthy


def _escalate(state: IncidentState, *, why: str, attempt: int) -> dict[str, Any]:
    return {"plan": {}, "attempt": attempt,
            "escalation": {"why": why, "summary": runbook.escalation_summary(dict(state), why=why)}}


def plan(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    """Choose the next hypothesis' mitigation on its component; blast radius and causal advice included."""
    incident_id, alert = state["incident_id"], state["alert"]
    if not state.get("tried") and not state.get("source_checked"):
        resolved = _source_resolved(tools, incident_id)
        if resolved:  # the world moved on before we acted: look before doing anything
            return {"plan": {}, "check": {"why": f"all alerts resolved at the source ({resolved.get('ended_at')})"}}
    health_checks = dict(state.get("health_checks") or {})
    if not state.get("tried") and not state.get("source_checked"):
        gone = symptom_gone(state, tools=tools, checks=health_checks)
        if gone:  # the source has not said so yet (its resolved notice lags), but the symptom has cleared
            return {"plan": {}, "check": {"why": gone}, "source_checked": True, "health_checks": health_checks}
    hypotheses = runbook.act_order(state.get("hypotheses") or [], alert=alert)
    hypotheses, promoted = sick_hosts_first(hypotheses, state=dict(state), tools=tools, checks=health_checks)
    tried = {(t["action"], t["target"]) for t in state.get("tried") or []}
    acted_on = {t["target"] for t in state.get("tried") or []}
    # an action the cloud refused as not applicable ran nothing: it does not use up an attempt
    spent = sum(1 for t in state.get("tried") or [] if not t.get("refused"))
    attempt = state.get("attempt", 0)
    source = alert_source(alert)
    healthy_roots: list[str] = []
    borrowed: list[str] = []
    guesses: list[str] = []
    while True:
        if spent >= tools.policy.max_attempts:
            return _escalate(state, why=f"{spent} attempt(s) did not recover the target "
                                        f"(policy max {tools.policy.max_attempts})", attempt=attempt)
        if attempt >= len(hypotheses):
            why = "no hypothesis left to act on" if hypotheses else "no hypothesis"
            if healthy_roots:
                why += (f" (probed healthy now, so not what keeps {source} unhealthy: "
                        f"{', '.join(dict.fromkeys(healthy_roots))})")
            if borrowed:
                why += f" (symptoms borrowed from a sick dependency: {', '.join(dict.fromkeys(borrowed))})"
            if guesses:
                why += f" (no named cause to act on after a failed try: {', '.join(dict.fromkeys(guesses))})"
            return {**_escalate(state, why=why, attempt=attempt), "health_checks": health_checks}
        hypothesis = hypotheses[attempt]
        step = runbook.choose(hypothesis, alert=alert)
        if step["target_kind"] == "node" and step["family"] and tools.recommend_node_action:
            rec = tools.recommend_node_action({"node": step["target"], "root_cause": step["root_cause"], "alert": alert})
            if rec and rec.get("action"):
                step.update(action=rec["action"], risk=rec.get("risk", step["risk"]),
                            reason=rec.get("reason", "causal recommendation"))
                step["causal"] = {"features": rec.get("features"), "explanation": rec.get("explanation")}
        if (step["action"], step["target"]) in tried:
            attempt += 1  # the same action on the same target already failed: try the next hypothesis
            continue
        if root_is_healthy(step, source=source, tools=tools, checks=health_checks, acted_on=acted_on):
            healthy_roots.append(step["target"])
            attempt += 1  # a component that is well now cannot be what keeps the symptom going
            continue
        if spent and step.get("guess"):
            guesses.append(step["target"])
            attempt += 1  # one guess per incident: after a failed try a person is better than a second guess
            continue
        lender = (borrowed_from(step, state=dict(state), tools=tools, checks=health_checks, acted_on=acted_on)
                  if spent else None)
        if lender:
            borrowed.append(f"{step['target']} (calls unhealthy {lender})")
            attempt += 1  # after a failed try, a service whose dependency is sick is not acted on again blindly
            continue
        break
    if step["action"] == "escalate":
        return {**_escalate(state, why=step["reason"], attempt=attempt), "health_checks": health_checks}
    if hypothesis.get("component") in promoted:
        step["reason"] += f"; tried before the services it hosts: {promoted[hypothesis['component']]}"
    if healthy_roots:
        step["reason"] += f"; skipped {', '.join(dict.fromkeys(healthy_roots))}: healthy when probed"
    if borrowed:
        step["reason"] += f"; skipped {', '.join(dict.fromkeys(borrowed))}: its symptom may be its dependency's"
    radius = blast.assess(step, state=dict(state), tools=tools)
    step.update(risk=radius["risk"], blast=radius, attempt=attempt,
                confidence=float(hypothesis.get("confidence", 0.0)),
                hypothesis={"component": hypothesis.get("component"), "root_cause": hypothesis.get("root_cause")})
    if radius["refuse"]:
        return {**_escalate(state, why=f"blast radius: {radius['refuse']}", attempt=attempt), "health_checks": health_checks}
    raised = f"; risk raised by {', '.join(radius['raised_by'])}" if radius["raised_by"] else ""
    tools.store.add_event(
        incident_id, kind="planned", actor="actor", dedup_key=f"planned:{attempt}",
        message=f"plan: {step['action']} on {step['target_kind']} {step['target'] or '?'} "
                f"(risk {step['risk']}; {step['reason']}{raised})", data=step,
    )
    return {"plan": step, "approval": {}, "action_result": {}, "verifying": {}, "attempt": attempt, "check": {},
            "health_checks": health_checks}


def symptom_gone(state: IncidentState, *, tools: AgentTools, checks: dict[str, Any]) -> str | None:
    """Before the first action: one probe of the alert's own component; a reason when it is healthy now.

    Why: an alert source reports "resolved" only at its next notification (Alertmanager's group
    interval, minutes), so a transient condition (a brief spike, a flapping check) can still read as
    firing when the actor is about to act. Acting then changes something that is already well: every
    action taken for it is a wrong one. A healthy probe sends the incident to ``check``, which looks
    at the diagnosed component too and closes it only when everything agrees. ``None`` from the probe
    (no source can tell) is not "healthy": the actor goes on. Only telemetry is asked: the cloud's view
    (an instance "running") says nothing about a symptom such as a hung kernel.
    """
    source = alert_source(state.get("alert") or {})
    if not source:
        return None
    checks[source] = tools.telemetry.health(source)
    if checks[source] is True:
        return f"the alert's symptom on {source} has cleared before any action (the source has not said so yet)"
    return None


def root_is_healthy(step: dict[str, Any], *, source: str | None, tools: AgentTools, checks: dict[str, Any],
                    acted_on: set[str]) -> bool:
    """True when telemetry says the step's target is healthy now (for the alert's own component: when it was at the
    symptom check, i.e. a check found the symptom gone there but still unhealthy elsewhere).

    Why: the alert's symptom is still there (``symptom_gone`` looked), so its cause is still active, and an
    active fault shows on its own component. A diagnosed root that probes healthy is a past or borrowed
    anomaly (a fault another incident already fixed, a caller slowed by its callee): acting on it cannot
    help, and the next hypothesis is tried instead. Only telemetry counts (``None``: cannot tell, act); a
    component acted on earlier in this incident is probed again, since the action changed it.
    """
    target = step.get("target")
    if step.get("action") == "escalate" or not target:
        return False
    if target == source:  # looked at once before the first plan; healthy then means the symptom went elsewhere
        return checks.get(target) is True and target not in acted_on
    if target not in checks or target in acted_on:
        checks[target] = tools.telemetry.health(target)
    return checks[target] is True


def borrowed_from(step: dict[str, Any], *, state: dict[str, Any], tools: AgentTools,
                  checks: dict[str, Any], acted_on: set[str]) -> str | None:
    """A service the step's target calls that telemetry says is unhealthy now, or None.

    Why, and why only after a failed attempt: a service whose dependency fails shows errors and latency
    of its own, so once a first action has not cleared the symptom, acting on a caller of a sick
    service is a guess at a victim. The dependency's own incident (or a later hypothesis on it) is the
    place to act. Before any attempt the diagnosis, which weighs the call graph, is trusted as it is.
    """
    target = step.get("target")
    if step.get("target_kind") != "service" or not target or step.get("action") == "escalate":
        return None
    topology = blast.topology_of(state)
    components = ((state.get("signals") or {}).get("case") or {}).get("components") or {}
    alert = state.get("alert") or {}
    nodes = set(topology["placement"].values()) | ({str(alert["node"])} if alert.get("node") else set())
    nodes |= {name for name, c in components.items() if runbook.kind_of({"component_kind": c.get("kind")}) == "node"}
    nodes |= {str(h.get("component")) for h in state.get("hypotheses") or [] if runbook.kind_of(h) == "node"}
    for caller, callee in topology["edges"]:
        if caller != target or callee in nodes or callee == target:
            continue
        if callee not in checks or callee in acted_on:
            checks[callee] = tools.telemetry.health(callee)
        if checks[callee] is False:
            return str(callee)
    return None


def hosts_of(service: str, *, state: dict[str, Any]) -> set[str]:
    """The nodes ``service`` runs on, as far as the state knows: placement, service->node edges, the alert."""
    topology = blast.topology_of(state)
    hosts = {n for s, n in topology["placement"].items() if s == service}
    hosts |= {callee for caller, callee in topology["edges"] if caller == service}
    alert = state.get("alert") or {}
    if alert.get("service") == service and alert.get("node"):
        hosts.add(str(alert["node"]))
    return hosts


def sick_hosts_first(hypotheses: list[dict[str, Any]], *, state: dict[str, Any], tools: AgentTools,
                     checks: dict[str, bool | None]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Move a node hypothesis before the service hypotheses it hosts when a probe finds that node unhealthy.

    Why: a sick machine (missed heartbeats, memory or disk exhausted, packets dropped) degrades every
    service on it, so a diagnosis that reads the services' symptoms can rank one of them first; an action
    on that service cannot heal its host, while fixing the host clears the services' symptoms too. A
    healthy host says the opposite, and the ranking stands. Each node is probed once per incident
    (``checks`` keeps the answers in the state), so the order is the same at every attempt.
    Returns the new order and {node: why} for the nodes moved.
    """
    order = list(hypotheses)
    promoted: dict[str, str] = {}
    for i, node_hyp in enumerate(hypotheses):
        node = node_hyp.get("component")
        if runbook.kind_of(node_hyp) != "node" or not node:
            continue
        hosted = [h for h in hypotheses[:i] if runbook.kind_of(h) == "service" and h.get("component")
                  and node in hosts_of(str(h["component"]), state=state)]
        if not hosted:
            continue
        if node not in checks:
            checks[node] = probe_health(str(node), tools=tools)
        if checks[node] is not False:
            continue
        first = min(order.index(h) for h in hosted)
        order.remove(node_hyp)
        order.insert(first, node_hyp)
        promoted[str(node)] = (f"{node} is unhealthy itself, which explains "
                               f"{', '.join(sorted({str(h['component']) for h in hosted}))}")
    return order, promoted


def approve(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    step = state["plan"]
    if not tools.policy.needs_approval(step["risk"]):
        return {"approval": {"approved": True, "by": "policy", "comment": f"risk {step['risk']} below approval threshold"}}
    incident_id = state["incident_id"]
    # side effects before interrupt() run again on resume, so both calls here are idempotent
    tools.store.update_incident(incident_id, status="awaiting_approval")  # first: whoever sees the request sees the status
    # after a stale request the operator is asked again: a new round is a new request, the same round is not
    again = {"round": state["approval_round"]} if state.get("approval_round") else {}
    approval_id = tools.store.request_approval(incident_id, action=step["action"], target=step["target"],
                                               risk=step["risk"], reason=step["reason"], **again)
    decision = interrupt({"kind": "approval", "plan": step, "approval_id": approval_id})
    decision = decision if isinstance(decision, dict) else {"approved": bool(decision)}
    key = f"approval:{step['attempt']}:{approval_id}"
    if decision.get("stale"):
        tools.store.update_incident(incident_id, status="verifying")
        tools.store.add_event(incident_id, kind="approval_stale", actor=str(decision.get("by", "source")),
                              dedup_key=key, data=decision,
                              message=f"approval for {step['action']} on {step['target']} is stale "
                                      f"({decision.get('comment') or 'the alerts resolved'}); re-checking first")
        return {"approval": {**decision, "approved": False, "stale": True},
                "check": {"why": "the pending approval went stale"}}
    tools.store.update_incident(incident_id, status="mitigating" if decision.get("approved") else "escalated")
    tools.store.add_event(
        incident_id, kind="approval", actor=str(decision.get("by", "operator")), dedup_key=key,
        message=f"{'approved' if decision.get('approved') else 'rejected'} {step['action']} on {step['target']}",
        data=decision,
    )
    return {"approval": decision}


def check(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    """One probe before acting, when the source says it is over: closed as self-recovered if it agrees."""
    incident_id, alert = state["incident_id"], state["alert"]
    step = state.get("plan") or {}
    if step.get("target"):
        targets = [step["target"]]
    else:
        top = (state.get("hypotheses") or [{}])[0]
        targets = [t for t in (top.get("component"), alert.get("node"), alert.get("service")) if t]
    seen = {t: probe_health(t, tools=tools) for t in dict.fromkeys(targets)}
    healthy = all(v is not False for v in seen.values())
    why = (state.get("check") or {}).get("why", "re-check")
    tools.store.add_event(
        incident_id, kind="checked", actor="actor", dedup_key=f"checked:{state.get('attempt', 0)}:{why}",
        message=(f"{why}: probes agree, {', '.join(seen) or 'nothing'} healthy; no action needed" if healthy
                 else f"{why}, but {', '.join(t for t, v in seen.items() if v is False)} still unhealthy: continuing"),
        data={"health": seen, "why": why},
    )
    if healthy:
        return {"recovered": True, "self_recovered": True, "check": {}}
    renewed = {"approval_round": state.get("approval_round", 0) + 1} if step else {}
    return {"source_checked": True, "check": {}, "approval": {}, **renewed}


def execute(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    step, incident_id = state["plan"], state["incident_id"]
    policy = tools.policy
    result: dict[str, Any]
    if not policy.actions_enabled:
        result = {"status": "blocked", "reason": "kill switch: actions are disabled"}
    elif tools.store.actions_in_last_hour() >= policy.max_actions_per_hour:
        result = {"status": "blocked", "reason": f"rate limit: {policy.max_actions_per_hour} actions/hour"}
    else:
        key = f"incident:{incident_id}:attempt:{step['attempt']}:{step['action']}:{step['target']}"
        earlier = tools.store.begin_action(key, incident_id=incident_id, kind=step["action"], target=step["target"],
                                           risk=step["risk"], params={"root_cause": step["root_cause"]})
        if earlier is not None:
            result = {**earlier, "reused": True}
        else:
            try:
                # the ledger key travels with the call: a cloud that dedupes (AWS tags) dedupes on this incident's
                # attempt, never on a look-alike from another incident
                result = {"status": "succeeded",
                          **tools.cloud.execute(step["action"], step["target"], params={**step, "idempotency_key": key})}
            except Exception as exc:  # a failed cloud call is an outcome to record, not a crash
                result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                if not_applicable(exc):
                    result["refused"] = True
            tools.store.finish_action(key, status=result["status"], result=result)
    tools.store.add_event(
        incident_id, kind="executed", actor="actor", dedup_key=f"executed:{step['attempt']}",
        message=f"{step['action']} on {step['target']}: {result['status']}"
                + (f" ({result.get('reason') or result.get('error')})" if result["status"] != "succeeded" else ""),
        data=result,
    )
    now = tools.clock()
    tried = [*(state.get("tried") or []), {"action": step["action"], "target": step["target"], "outcome": result["status"],
                                           **({"refused": True} if result.get("refused") else {})}]
    if result["status"] != "blocked":
        tools.store.update_incident(incident_id, status="verifying")
    return {"action_result": result, "tried": tried,
            "verifying": {"started": now, "deadline": now + policy.verify_timeout_s, "checks": 0, "next_check_at": now}}


def verify(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    """One probe. Not healthy yet and time left: ``verifying.next_check_at`` says when to come back."""
    step, incident_id = state["plan"], state["incident_id"]
    result = state.get("action_result", {})
    progress = dict(state.get("verifying") or {})
    now = tools.clock()
    attempt = state.get("attempt", 0)
    source = alert_source(state.get("alert") or {})
    removed = step["action"] in REMOVES_TARGET
    if result.get("status") != "succeeded":
        recovered = False
    elif removed and source in (None, step["target"]):
        recovered = True
    else:
        progress["checks"] = progress.get("checks", 0) + 1
        # a target taken out of rotation is not probed (it is gone, not well); the alert's symptom still is
        healthy = True if removed else probe_health(step["target"], tools=tools)
        recovered = healthy is not False  # None: no source can tell; the action's success stands
        if recovered and source and source != step["target"]:
            # the target is well, but is the alert's own symptom gone? a fix elsewhere must clear it too
            recovered = probe_health(source, tools=tools) is not False
            if not recovered:
                progress["symptom_elsewhere"] = source
        now = tools.clock()  # a probe can take time: the deadline is judged after it
        settled = now >= progress.get("started", now) + runbook.settle_s(step["action"])
        if not recovered and settled:
            progress["gave_up"] = (f"{source} still unhealthy though {step['target']} is "
                                   + ("out of rotation" if removed else "healthy")
                                   if progress.get("symptom_elsewhere") else f"{step['target']} still unhealthy")
        if not recovered and not settled and now < progress.get("deadline", now):
            progress["next_check_at"] = now + tools.policy.verify_interval_s
            tools.store.add_event(
                incident_id, kind="verifying", actor="actor", dedup_key=f"verifying:{attempt}",
                message=f"{step['target']} not healthy yet after {step['action']}; re-checking every "
                        f"{tools.policy.verify_interval_s:g}s until {progress['deadline'] - now:.0f}s from now",
                data={"checks": progress["checks"]},
            )
            return {"verifying": progress, "recovered": False}
    progress["done"] = True
    if tools.record_mitigation and (step.get("causal") or {}).get("features"):
        try:
            # the key makes a repeated verify run (a redelivered task) write the same row, not a second one
            tools.record_mitigation({"step": step, "recovered": recovered, "result": result,
                                     "verify_s": now - progress.get("started", now),
                                     "key": f"incident-{incident_id}-attempt-{attempt}"})
        except Exception:  # learning data is best effort; the incident goes on
            log.exception("incident %s: could not record the mitigation outcome", incident_id)
    seen = (f"{step['target']} recovered after {step['action']}" if recovered else
            f"{progress['symptom_elsewhere']} still unhealthy after {step['action']} on {step['target']}"
            if progress.get("symptom_elsewhere") else f"{step['target']} still unhealthy after {step['action']}")
    tools.store.add_event(
        incident_id, kind="verified", actor="actor", dedup_key=f"verified:{attempt}",
        message=f"{seen} ({progress.get('checks', 0)} probe(s))"
                + (f"; stopped {runbook.settle_s(step['action']):g}s after the action: {progress['gave_up']}"
                   if progress.get("gave_up") else ""),
        data={"recovered": recovered, "action_status": result.get("status"), "checks": progress.get("checks", 0)},
    )
    tried = list(state.get("tried") or [])
    if tried:
        tried[-1] = {**tried[-1], "outcome": "recovered" if recovered else f"{tried[-1]['outcome']}, not recovered"}
    return {"recovered": recovered, "verifying": progress, "tried": tried,
            "attempt": attempt + (0 if recovered else 1)}


def alert_source(alert: dict[str, Any]) -> str | None:
    """The component whose symptom the alert reports: its service, or its node for a node-level alert."""
    labels = alert.get("labels") or {}
    if alert.get("service") and labels.get("job") != "node":
        return str(alert["service"])
    return str(alert["node"]) if alert.get("node") else None


# what a cloud connector raises when an action does not apply to a target (nothing ran): a type that says
# so, or an HTTP 4xx answer from an action endpoint
_REFUSED_WORDS = ("does not apply", "not applicable", "not supported", "unsupported", "answered 400", "answered 404",
                  "answered 405", "answered 422")


def not_applicable(exc: Exception) -> bool:
    return isinstance(exc, NotImplementedError) or any(w in str(exc).lower() for w in _REFUSED_WORDS)


def verification_pending(state: IncidentState) -> bool:
    progress = state.get("verifying") or {}
    return bool(progress) and not progress.get("done") and not state.get("recovered")


def resolve(state: IncidentState, *, tools: AgentTools) -> dict[str, Any]:
    incident_id = state["incident_id"]
    step = state.get("plan") or {}
    result = state.get("action_result") or {}
    mitigation = None
    hypotheses: list[dict[str, Any]] | None = None
    if state.get("self_recovered"):
        outcome, status = "self_recovered", "resolved"
        message = ("the alert's symptom cleared before any action (the source said so, or a probe saw it first) and "
                   "the probes agree: closed as self-recovered, no action taken")
    elif state.get("recovered"):
        outcome, status, mitigation = "resolved", "resolved", step.get("action")
        message = f"resolved by {step.get('action')} on {step.get('target')} ({step.get('root_cause')})"
        revised = confirmed_first(state)
        if revised is not None:
            hypotheses = revised
            tools.store.save_hypotheses(incident_id, hypotheses)
            tools.store.add_event(incident_id, kind="diagnosis_revised", actor="actor", dedup_key="diagnosis_revised",
                                  message=f"root cause revised to {hypotheses[0]['root_cause']} on "
                                          f"{hypotheses[0]['component']}: {hypotheses[0]['evidence'][0]['detail']}",
                                  data={"hypothesis": {k: hypotheses[0].get(k) for k in ("root_cause", "component")}})
    elif state.get("approval", {}).get("approved") is False and not state.get("approval", {}).get("stale"):
        outcome, status = "rejected", "escalated"
        message = "mitigation rejected by an operator; handed to a person"
    elif result.get("status") == "blocked":
        outcome, status = "blocked", "escalated"
        message = f"action not taken ({result.get('reason')}); handed to a person"
    else:
        outcome, status = "escalated", "escalated"
        escalation = state.get("escalation") or {}
        message = escalation.get("summary") or runbook.escalation_summary(
            dict(state), why="no mitigation recovered the target")
    tools.store.add_event(incident_id, kind=outcome, actor="actor", dedup_key="closed", message=message,
                          data={"root_cause": step.get("root_cause"), "action": step.get("action"),
                                "target": step.get("target"), "tried": state.get("tried") or []})
    tools.store.update_incident(incident_id, status=status, mitigation=mitigation, resolved=status == "resolved")
    if tools.on_resolved:
        # a self-recovered incident is remembered without its (unexecuted) plan: no action is learned from it
        remembered = {**state, "outcome": outcome, **({"hypotheses": hypotheses} if hypotheses else {}),
                      **({"plan": {}, "recovered": False} if outcome == "self_recovered" else {})}
        try:
            tools.on_resolved(remembered)
        except Exception:  # remembering must never undo a resolution; the next upkeep repairs memory
            log.exception("incident %s: recording the episode failed", incident_id)
    return {"outcome": outcome, **({"hypotheses": hypotheses} if hypotheses else {})}


def confirmed_first(state: IncidentState) -> list[dict[str, Any]] | None:
    """The ranking with the hypothesis the recovering action was chosen for first, or None when it already is.

    Why: the actor does not always act on the diagnosis' top hypothesis (it skips a root that probes
    healthy, a fix that failed, a service whose sick host comes first), and an action that cleared the
    alert's symptom, verified by a probe, is stronger evidence than the ranking before it. The incident's
    root cause is what people read, what the postmortem cites and what episode memory recalls next time:
    it names what was fixed, with the verification as its first evidence item.
    """
    step = state.get("plan") or {}
    acted = step.get("hypothesis") or {}
    hypotheses = list(state.get("hypotheses") or [])
    if not acted.get("component") or not hypotheses:
        return None
    key = (acted.get("component"), acted.get("root_cause"))
    cause = step.get("cause") or acted.get("root_cause")
    if (hypotheses[0].get("component"), hypotheses[0].get("root_cause")) == key and cause == key[1]:
        return None
    found = [h for h in hypotheses if (h.get("component"), h.get("root_cause")) == key]
    if not found:
        return None
    verified = {"kind": "verified", "component": acted["component"],
                "detail": f"{step.get('action')} on {step.get('target')} cleared the alert's symptom (verified by a probe)"}
    first = {**found[0], "evidence": [verified, *(found[0].get("evidence") or [])], "confirmed_by": step.get("action")}
    if cause != key[1]:  # the action addressed the runner-up cause (the label named a symptom): that cause it is
        first.update(root_cause=cause, fault=cause,
                     alternatives=[key[1], *[a for a in found[0].get("alternatives") or [] if a not in (cause, key[1])]])
    rest = [h for h in hypotheses if h is not found[0]]
    return [{**h, "rank": i} for i, h in enumerate([first, *rest])]
