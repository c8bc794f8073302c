"""Which mitigation fits a diagnosis: (component kind, fault family, evidence) -> action.

Why families and not fault labels: diagnosers (ours, an LLM, a replayed benchmark) name faults in
their own words ("memory_leak", "oom", "heap_exhaustion"); the mitigation depends on what kind of
trouble it is, not on the exact label. A fault is put in a family by the words in its name; the
family says what to do on a node and on a service. Node faults go to the causal recommender
first (``actor.plan``); this table is its fallback. A change event on the diagnosed component
turns an error-type service fault into a rollback. Anything no family claims escalates.
"""

from __future__ import annotations

from typing import Any

# family -> words in a fault name that put it there (first family that matches wins)
FAMILY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("change", ("deploy", "release", "rollout", "config", "change", "version", "migration")),
    ("hardware", ("disk", "hardware", "ecc", "smart", "nvme", "ssd", "raid", "fan", "psu")),
    ("hang", ("hang", "lockup", "stall", "freeze", "unresponsive", "deadlock", "crash", "panic")),
    ("leak", ("leak", "oom", "memory", "heap", "fd_exhaust", "handle", "gc")),
    ("capacity", ("cpu", "saturation", "overload", "load", "traffic", "throttl", "capacity", "queue")),
    ("network", ("partition", "network", "unreachable", "packet", "nic", "link", "dns")),
    ("dependency", ("delay", "latency", "timeout", "dependency", "upstream", "slow")),
)
# family -> (action on a node, action on a service); None = no safe automatic action there
FAMILY_ACTIONS: dict[str, tuple[str | None, str | None]] = {
    "change": (None, "rollback"),
    "hardware": ("send_to_repair", "failover"),
    "hang": ("reboot", "restart_service"),
    "leak": ("reboot", "restart_service"),
    "capacity": ("migrate", "scale_out"),
    "network": ("redeploy", "failover"),
    "dependency": (None, "shed_load"),
}
# where a family's fault lives when the diagnosis does not name a component
FAMILY_DEFAULT_KIND = {"change": "service", "hardware": "node", "hang": "node", "leak": "service",
                       "capacity": "service", "network": "node", "dependency": "service"}
# the risk of an action before the blast-radius check raises it
ACTION_RISK = {
    "wait": "low", "scale_out": "low", "restart_service": "low",
    "reboot": "medium", "stop_start": "medium", "redeploy": "medium", "migrate": "medium", "rollback": "medium",
    "failover": "medium", "shed_load": "medium",
    "send_to_repair": "high", "replace": "high", "reimage": "high",
}
# actions that take capacity away while they run (the blast-radius check counts what is left)
DISRUPTIVE = {"reboot", "stop_start", "redeploy", "migrate", "send_to_repair", "replace", "reimage",
              "restart_service", "rollback", "failover", "shed_load"}
# how long after an action returns its effect should show in a probe (a stated prior, not fitted):
# a process restart or load shedding is visible within a scrape or two, a rollback or a move of
# replicas within a minute; past this a probe that still sees the symptom means the action did not
# help, and waiting out the whole verify window only delays the next hypothesis
ACTION_SETTLE_S = {"restart_service": 30.0, "shed_load": 30.0, "rollback": 60.0, "failover": 60.0, "scale_out": 60.0,
                   "reboot": 60.0, "stop_start": 60.0, "migrate": 60.0, "redeploy": 60.0}
DEFAULT_SETTLE_S = 60.0
# fault families that only a node can have, and those only a service can have: a hypothesis that puts
# one on the other kind of component names the wrong component (a service has no disk of its own to fail;
# a node has no release to roll back)
NODE_ONLY_WORDS = ("disk", "hardware", "ecc", "smart", "nvme", "ssd", "raid", "kernel", "nic", "steal", "partition",
                   "heartbeat")
SERVICE_ONLY_FAMILIES = {"change"}
# words that name what is seen (slow calls) rather than why: on a service, a "network_delay" with no network
# signal of its own (drops, retransmits) says only that it is slow, so the runbook acts on the best-supported
# cause among the diagnosis' runner-ups, and on nothing named falls back to the cheapest reversible action
SYMPTOM_WORDS = ("delay", "latency", "slow")
# error-like families a recent change on the component explains better than the family's own action
CHANGE_EXPLAINS = {None, "change", "dependency", "hang"}
NODE_KINDS = {"node", "host", "vm", "instance", "machine"}
SERVICE_KINDS = {"service", "pod", "container", "deployment", "process", "job", "function"}


def family_of(fault: str | None) -> str | None:
    """The fault's family from the words in its name, or None when no family claims it."""
    name = (fault or "").lower()
    if not name or name == "unknown":
        return None
    for family, words in FAMILY_WORDS:
        if any(w in name for w in words):
            return family
    return None


def settle_s(action: str | None) -> float:
    """Seconds after ``action`` returns by which a probe should see its effect."""
    return ACTION_SETTLE_S.get(action or "", DEFAULT_SETTLE_S)


def level_of(fault: str | None) -> str | None:
    """"node" or "service" when only that kind of component can have ``fault``; None when either can."""
    name = (fault or "").lower()
    if any(w in name for w in NODE_ONLY_WORDS):
        return "node"
    if family_of(name) in SERVICE_ONLY_FAMILIES:
        return "service"
    return None


def kind_of(hypothesis: dict[str, Any]) -> str | None:
    kind = str(hypothesis.get("component_kind") or "").lower()
    return "node" if kind in NODE_KINDS else "service" if kind in SERVICE_KINDS else None


def level_matches(hypothesis: dict[str, Any]) -> bool:
    """False when the hypothesis puts a node-only fault on a service or a service-only fault on a node."""
    level, kind = level_of(hypothesis.get("fault") or hypothesis.get("root_cause")), kind_of(hypothesis)
    return level is None or kind is None or level == kind


def symptom_only(hypothesis: dict[str, Any], family: str | None) -> bool:
    """A network-family label made of symptom words, with no network signal on the component itself (node or service)."""
    name = str(hypothesis.get("fault") or hypothesis.get("root_cause") or "").lower()
    if family != "network" or not any(w in name for w in SYMPTOM_WORDS):
        return False
    component = hypothesis.get("component")
    return not any(e.get("signal") == "network" and not e.get("client_side") and e.get("component") in (None, component)
                   for e in evidence_items(hypothesis))


def node_alert(alert: dict[str, Any]) -> bool:
    """Raised about a machine (node_exporter's ``job="node"``, or no service named), not about a service."""
    return bool(alert.get("node")) and ((alert.get("labels") or {}).get("job") == "node" or not alert.get("service"))


def act_order(hypotheses: list[dict[str, Any]], *, alert: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Hypotheses in the order to act on them: the diagnosis' ranking, except that

    * one whose component kind cannot have its fault (a disk failure on a service) goes last;
    * for an alert about a machine (heartbeat, disk, node memory), hypotheses on that node go before
      those on the services it hosts: a service cannot take its node's heartbeat or disk away, while
      the node's fault explains its services' symptoms too.

    The sort is stable, so the diagnosis' ranking decides among equals.
    """
    alert = alert or {}
    machine = alert.get("node") if node_alert(alert) else None

    def key(h: dict[str, Any]) -> tuple[bool, bool]:
        return (not level_matches(h), bool(machine) and not (kind_of(h) == "node" and h.get("component") == machine))

    return sorted(hypotheses, key=key)


def evidence_items(hypothesis: dict[str, Any]) -> list[dict[str, Any]]:
    """Evidence as dicts (older diagnosers wrote plain strings; they become ``{"kind": "text"}`` items)."""
    out = []
    for item in hypothesis.get("evidence") or []:
        out.append(item if isinstance(item, dict) else {"kind": "text", "detail": str(item)})
    return out


def change_on(component: str, hypothesis: dict[str, Any]) -> dict[str, Any] | None:
    """A change event (deploy, config) in the evidence on ``component`` (or on no named component)."""
    for item in evidence_items(hypothesis):
        if item.get("kind") == "change" and item.get("component") in (None, "", component):
            return item
    return None


def locate(hypothesis: dict[str, Any], *, alert: dict[str, Any]) -> tuple[str, str]:
    """(target, kind) from the hypothesis' component, else the alert's node or service by the fault's family."""
    kind = str(hypothesis.get("component_kind") or "").lower()
    component = hypothesis.get("component")
    family = family_of(hypothesis.get("fault") or hypothesis.get("root_cause"))
    if component:
        if kind in NODE_KINDS:
            return str(component), "node"
        if kind in SERVICE_KINDS:
            return str(component), "service"
        if not kind:
            return str(component), "node" if component == alert.get("node") else "service"
        return str(component), kind  # a kind we cannot act on (database, queue, ...): the caller escalates
    kind = FAMILY_DEFAULT_KIND.get(family or "", "node" if alert.get("node") and not alert.get("service") else "service")
    other = "service" if kind == "node" else "node"
    target = alert.get(kind) or alert.get(other) or ""
    if not alert.get(kind) and alert.get(other):
        kind = other
    return str(target), kind


def runner_up_cause(hypothesis: dict[str, Any], *, kind: str) -> str | None:
    """The best-ranked alternative label that names a cause with an action on this kind of component.

    Symptom-like families (network delay, dependency, a change with nothing to roll back) are skipped:
    the runner-up is wanted exactly because the top label names only what is seen.
    """
    slot = 0 if kind == "node" else 1
    for alternative in hypothesis.get("alternatives") or []:
        family = family_of(alternative)
        if family not in (None, "network", "dependency", "change") and FAMILY_ACTIONS[family or ""][slot]:
            return str(alternative)
    return None


def choose(hypothesis: dict[str, Any], *, alert: dict[str, Any]) -> dict[str, Any]:
    """The runbook's step for one hypothesis: action (or ``escalate``), target, kind, risk and why.

    Two labels name what is seen rather than a cause the action can undo, and get the diagnosis'
    runner-up cause instead (else the cheapest reversible action): a delay with no network signal on
    the component itself, and a bad change on a service with no change event on it (a rollback
    needs something to roll back to; without a change it can only restart the same release).
    """
    fault = hypothesis.get("fault") or hypothesis.get("root_cause") or "unknown"
    family = family_of(fault)
    target, kind = locate(hypothesis, alert=alert)
    change = change_on(target, hypothesis) if kind == "service" else None
    unexplained_change = kind == "service" and family == "change" and change is None
    guess = False  # the action follows from no named cause (the cheapest reversible one): a guess
    cause = fault  # the cause the action addresses (the runner-up when the label names a symptom)
    if kind == "service" and change is not None and family in CHANGE_EXPLAINS:
        action = "rollback"
        reason = f"a change explains {fault} on {target}: {change.get('detail') or change.get('change') or 'change event'}"
    elif kind not in ("node", "service"):
        action, reason = None, f"no automatic action for a {kind} component"
    elif symptom_only(hypothesis, family) or unexplained_change:
        what = ("no change event on it to roll back" if unexplained_change
                else "names a symptom with no network signal of its own")
        runner_up = runner_up_cause(hypothesis, kind=kind)
        if runner_up:
            cause, family = runner_up, family_of(runner_up)
            action = FAMILY_ACTIONS[family or ""][0 if kind == "node" else 1]
            reason = f"{fault} on {target} {what}; acting on the runner-up cause {runner_up}"
        elif kind == "service":
            action, guess = "restart_service", True
            reason = f"{fault} on {target} {what} and no other cause: the cheapest reversible action first"
        else:  # on a node the family's own action moves the work elsewhere, whatever slowed it there
            action = FAMILY_ACTIONS[family or ""][0]
            reason = f"{fault} on {target} {what} and no other cause: runbook for the {family} family on a node"
    else:
        node_action, service_action = FAMILY_ACTIONS.get(family or "", (None, None))
        action = node_action if kind == "node" else service_action
        reason = (f"runbook for the {family} family ({fault}) on a {kind}" if action
                  else f"no runbook for {fault} on a {kind}")
    if not target:
        action, reason = None, f"the diagnosis names no component for {fault} and the alert has no target"
    return {"action": action or "escalate", "target": target, "target_kind": kind, "family": family,
            "risk": ACTION_RISK.get(action or "", "critical"), "reason": reason, "root_cause": fault,
            "change": change, "guess": guess, "cause": cause}


def escalation_summary(state: dict[str, Any], *, why: str) -> str:
    """What a person picking up the incident needs first: the alert, the ranked causes with evidence, why we stopped."""
    alert = state.get("alert") or {}
    lines = [f"Escalated: {why}.",
             f"Alert {alert.get('name', '?')} ({alert.get('severity', '?')}) on "
             f"{alert.get('node') or alert.get('service') or '?'}: {alert.get('summary', '')}".rstrip(": ")]
    for i, h in enumerate((state.get("hypotheses") or [])[:3], start=1):
        where = f" on {h['component']}" if h.get("component") else ""
        details = "; ".join(str(e.get("detail") or e.get("kind")) for e in evidence_items(h)[:3])
        lines.append(f"{i}. {h.get('root_cause', '?')}{where} (confidence {float(h.get('confidence', 0)):.2f})"
                     + (f": {details}" if details else ""))
    if not state.get("hypotheses"):
        lines.append("No hypothesis: the probes found nothing that names a cause.")
    tried = state.get("tried") or []
    if tried:
        lines.append("Tried: " + ", ".join(f"{t['action']} on {t['target']} ({t['outcome']})" for t in tried))
    return "\n".join(lines)
