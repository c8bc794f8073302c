"""The incident graph's state: what one incident's agents know, checkpointed after every step."""

from __future__ import annotations

from typing import Any, TypedDict


class IncidentState(TypedDict, total=False):
    incident_id: int
    alert: dict[str, Any]          # the first alert: name, severity, service, node, cluster, labels, summary
    context: str                   # compressed context the observer and diagnoser reason over
    signals: dict[str, Any]        # what probes found: anomalous metrics, log line count, the case (agents.diagnosis)
    hypotheses: list[dict[str, Any]]  # ranked {root_cause, fault, component, component_kind, confidence, evidence}
    attempt: int                   # which hypothesis the actor is working on (0-based)
    plan: dict[str, Any]           # {action, target, risk, reason, root_cause}
    approval: dict[str, Any]       # {approved, by, comment}
    action_result: dict[str, Any]
    recovered: bool
    outcome: str                   # resolved | escalated | rejected
