"""The incident graph's state: what one incident's agents know, checkpointed after every step."""

from __future__ import annotations

from typing import Any, TypedDict


class IncidentState(TypedDict, total=False):
    incident_id: int
    alert: dict[str, Any]          # the first alert: name, severity, service, node, cluster, labels, summary
    context: str                   # compressed context the observer and diagnoser reason over
    signals: dict[str, Any]        # what probes found: anomalous metrics, log line count, the case (agents.diagnosis)
    hypotheses: list[dict[str, Any]]  # ranked {root_cause, fault, component, component_kind, confidence, evidence}
    probe_scope: dict[str, Any]    # {hops, minutes, focus}: how wide the observer looks (the supervisor widens it)
    last_look: dict[str, int]      # what the look before saw (agents.supervisor.look_of): stop widening when it adds nothing
    probes: int                    # extra observation rounds spent (bounded by the policy's probe budget)
    schedule: dict[str, Any]       # the supervisor's last decision {next, reason}
    health_checks: dict[str, Any]  # component -> healthy (bool/None) as the actor probed it before acting
    attempt: int                   # which hypothesis the actor is working on (0-based)
    plan: dict[str, Any]           # {action, target, target_kind, risk, reason, root_cause, blast}
    escalation: dict[str, Any]     # {summary}: why no action was taken and what a person should know
    approval: dict[str, Any]       # {approved, by, comment, stale}
    approval_round: int            # how many times the same plan's approval went stale and was asked again
    action_result: dict[str, Any]
    verifying: dict[str, Any]      # {deadline, checks, next_check_at}: verification in progress
    tried: list[dict[str, Any]]    # actions taken so far {action, target, outcome}
    check: dict[str, Any]          # {why}: a probe is due before anything executes (alerts resolved, approval stale)
    source_checked: bool           # the source's resolution was checked with a probe (once)
    recovered: bool
    self_recovered: bool           # the alerts resolved and the probe agreed before any action ran
    outcome: str                   # resolved | self_recovered | escalated | rejected | blocked
