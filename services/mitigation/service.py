"""Causal node mitigation, wired: the model registry, training, recommendations for the actor and
the training rows the actor leaves behind after every mitigation (so the model keeps learning)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from services.config import Settings
from services.mitigation.events import count_events, iter_event_rows, record_event
from services.mitigation.registry import PolicyCache, model_registry

log = logging.getLogger(__name__)

# causal/ speaks Deoxys' vocabulary; the agents and connectors speak runbook actions
TO_PLATFORM = {"wait": "wait", "reboot": "reboot", "redeploy": "redeploy", "reimage": "reimage",
               "repair": "send_to_repair"}
FROM_PLATFORM = {v: k for k, v in TO_PLATFORM.items()} | {"stop_start": "reboot", "migrate": "redeploy", "replace": "reimage"}
RISK = {"wait": "low", "reboot": "medium", "redeploy": "medium", "reimage": "high", "repair": "high"}


def active_policy(settings: Settings, *, cache: PolicyCache):
    """The promoted model wrapped in its policy; a promotion by any process is seen on the next call.

    Each call reads the active pointer (one small query); `cache` (owned by the caller: the advisor,
    the API app) unpickles the model once per version.
    """
    return cache.get(settings.database_url)


def node_features(node: str, *, telemetry, database_url: str, cluster: str | None) -> dict[str, Any]:
    """Deoxys features from what the platform can observe: probes for signals, the database for history.

    Counters the probes do not expose keep neutral values; the policy's support check then decides
    whether the model may speak for such a node.
    """
    from services.incidents.models import Incident
    from services.storage.base import session_scope

    series = telemetry.metrics(node, minutes=15)

    def last(name: str, default: float = 0.0) -> float:
        points = series.get(name) or []
        return float(points[-1][1]) if points else default

    heartbeat = [v for _, v in series.get("heartbeat", [])]
    lost = sum(1 for v in heartbeat if v < 1.0)
    pattern = "none" if lost == 0 else ("sustained" if heartbeat and heartbeat[-1] < 1.0 and lost >= 3 else "intermittent")
    with session_scope(database_url) as session:
        recent = session.scalar(select(func.count(Incident.id)).where(
            Incident.node == node, Incident.opened_at >= datetime.now(UTC) - timedelta(days=30)))
    cpu, mem = last("cpu"), last("mem")
    return {
        "node_id": node, "cluster": cluster or "default",
        "hw_correctable_errors": int(last("disk_io_errors")), "hw_uncorrectable_errors": 0,
        "hw_fault_definitive": False, "heartbeat_loss_count": lost, "heartbeat_pattern": pattern,
        "cpu_util": min(1.0, cpu / 100.0 if cpu > 1.0 else cpu), "mem_util": min(1.0, mem / 100.0 if mem > 1.0 else mem),
        "vm_count": 10, "node_age_days": 365.0, "sku": "gen6",
        "recent_incidents_30d": max(0, int(recent or 0) - 1), "hour_of_day": datetime.now(UTC).hour,
    }


class NodeMitigationAdvisor:
    """The actor's hooks: ``recommend`` before a node mitigation, ``record`` after its outcome."""

    def __init__(self, settings: Settings, *, telemetry, policies: PolicyCache | None = None) -> None:
        self.settings, self.telemetry = settings, telemetry
        self.policies = policies or PolicyCache()

    def recommend(self, request: dict[str, Any]) -> dict[str, Any] | None:
        policy = active_policy(self.settings, cache=self.policies)
        if policy is None:
            return None
        alert = request.get("alert", {})
        features = node_features(request["node"], telemetry=self.telemetry, database_url=self.settings.database_url,
                                 cluster=alert.get("cluster"))
        try:
            rec = policy.recommend(features)
        except ValueError as exc:
            log.warning("causal recommendation for %s failed: %s", request["node"], exc)
            return None
        explained = rec.to_dict()
        how = "fallback to legacy" if rec.fallback else (f"override ({rec.override})" if rec.override else "model")
        return {"action": TO_PLATFORM[rec.action], "risk": RISK[rec.action], "explanation": explained,
                "features": features,
                "reason": f"causal {how}, model {rec.model_version}: {rec.action} "
                          f"(model best {rec.model_action}, legacy {rec.legacy_action})"}

    def record(self, *, features: dict[str, Any], action: str, downtime_min: float, interrupted: bool,
               capacity_out_hours: float, key: str | None = None) -> None:
        """Store the mitigation's outcome in the event table the next training run reads (the database).

        ``key`` names the episode (incident and attempt): a second write of the same episode is a
        no-op, so a redelivered verification cannot count one mitigation twice.
        """
        causal_action = FROM_PLATFORM.get(action)
        if causal_action is None:
            return
        now = datetime.now(UTC)
        # without a key, a random suffix: two mitigations of one node within a second are two episodes
        event_id = f"{features['node_id']}-{key}" if key else f"{features['node_id']}-{now.timestamp():.0f}-{uuid.uuid4().hex[:8]}"
        row = {**features, "event_id": event_id,
               "timestamp": now.isoformat(), "action": causal_action,
               "vm_downtime_min": round(downtime_min, 3), "vm_interrupted": interrupted,
               "capacity_out_hours": round(capacity_out_hours, 3)}
        record_event(self.settings.database_url, row=row)


def train_model(settings: Settings, *, data: str | None = None, synthetic: int = 0, quick: bool = False,
                progress=None, select_estimator: bool = False) -> dict[str, Any]:
    """Train, refute and (if the gate passes) promote a model into the database registry.

    The events come from `data` (a user's CSV/JSONL file), `synthetic` simulated events, or by
    default the events the actors recorded in the database. Returns the training result with
    `source` and `events_read`; {"skipped": ...} when the database holds no events yet.
    """
    from causal.model import ModelConfig
    from causal.refute import RefuteConfig
    from causal.synthetic import simulate_events
    from causal.train import train

    source: Any
    if synthetic:
        source, described = simulate_events(synthetic, seed=0).frame, f"synthetic:{synthetic}"
    elif data:
        source, described = data, f"file:{data}"
    else:
        if not count_events(settings.database_url):
            return {"skipped": "no events recorded yet", "source": "database", "events_read": 0}
        source, described = iter_event_rows(settings.database_url), "database"
    model_config = ModelConfig(n_estimators=48, nuisance_max_iter=40) if quick else None
    # quick: a small forest and a one-contrast gate (the out-of-service decision), tens of seconds not minutes
    refute_config = (RefuteConfig(contrasts=("redeploy",), sample_size=1500, num_simulations=1, n_estimators=16)
                     if quick else None)
    result = train(source, registry=model_registry(settings.database_url), model_config=model_config,
                   refute_config=refute_config, progress=progress, select_estimator=select_estimator)
    out = result.to_dict()
    read = out["metrics"].get("rows_valid", 0) + out["metrics"].get("rows_rejected", 0)
    return {**out, "source": described, "events_read": read}


def record_from_actor(advisor: NodeMitigationAdvisor, outcome: dict[str, Any]) -> None:
    """Turn the actor's verified mitigation into a training row (downtime measured, not assumed)."""
    step, result = outcome["step"], outcome.get("result", {})
    measured_s = float(result.get("expected_downtime_s") or 0.0) + float(outcome.get("verify_s", 0.0))
    if not outcome.get("recovered"):
        measured_s += 30 * 60  # unrecovered: the node stays down until a person acts; count half an hour
    action = step["action"]
    out_of_service = FROM_PLATFORM.get(action) in {"redeploy", "reimage", "repair"}
    advisor.record(features=step["causal"]["features"], action=action, downtime_min=measured_s / 60.0,
                   interrupted=action != "wait" or not outcome.get("recovered"),
                   capacity_out_hours=measured_s / 3600.0 if out_of_service else 0.0, key=outcome.get("key"))
