"""The toolbox handed to the agents: read-only probes on one side, privileged actions on the other.

Probes (telemetry, describe) can run any time; privileged actions only through ``actor`` after the
policy gate, and always with an idempotency key recorded in the store's action ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.protocols import CloudActions, IncidentStore, NullTelemetry, Telemetry

RISK_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class ActionPolicy:
    """The gate in front of every privileged action."""

    approval_required_risk: str = "high"
    actions_enabled: bool = True      # kill switch
    max_actions_per_hour: int = 30    # rate limit across the fleet
    max_attempts: int = 2             # hypotheses the actor tries before escalating to a person
    verify_timeout_s: float = 90.0    # how long recovery may take to show in the probes
    verify_interval_s: float = 3.0    # between two verification probes (a delayed task, never a sleep)
    blast_raise_dependents: int = 3   # this many dependents raise the risk class one step
    blast_critical_dependents: int = 10  # this many raise it two steps
    min_capacity_ratio: float = 0.5   # refuse an action that leaves less than this share healthy
    probe_budget: int = 2             # extra observation rounds the supervisor may order per incident
    confident: float = 0.5            # top hypothesis at or above this: act on it
    separation: float = 0.15          # top two closer than this (and both plausible): probe to separate them

    def needs_approval(self, risk: str) -> bool:
        return RISK_ORDER.get(risk, 3) >= RISK_ORDER.get(self.approval_required_risk, 2)


def keep_salient_lines(lines: list[str], *, budget_lines: int = 40) -> str:
    """Fallback compressor used when no memory library is wired: error-like lines first, deduplicated."""
    seen: dict[str, int] = {}
    for line in lines:
        seen[line] = seen.get(line, 0) + 1
    salient = [ln for ln in seen if any(w in ln.lower() for w in ("error", "fail", "fatal", "panic", "warn", "timeout"))]
    rest = [ln for ln in seen if ln not in salient]
    chosen = (salient + rest)[:budget_lines]
    return "\n".join(f"{ln} (x{seen[ln]})" if seen[ln] > 1 else ln for ln in chosen)


@dataclass
class AgentTools:
    store: IncidentStore
    cloud: CloudActions
    telemetry: Telemetry = field(default_factory=NullTelemetry)
    policy: ActionPolicy = field(default_factory=ActionPolicy)
    compress: Callable[[int, list[str]], str] = field(default=lambda _incident, lines: keep_salient_lines(lines))
    recall: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    recommend_node_action: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    on_resolved: Callable[[dict[str, Any]], None] | None = None
    record_mitigation: Callable[[dict[str, Any]], None] | None = None  # outcome row for the causal model
    capacity: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None  # {healthy, total} of the step's pool
    clock: Callable[[], float] = time.time  # verification deadlines (the benchmark passes simulated time)
