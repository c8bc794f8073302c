"""Causal node mitigation, wired: the model registry, training, recommendations for the actor and
the training rows the actor leaves behind after every mitigation (so the model keeps learning)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
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


# telemetry series that carry a feature, first found wins: the simulator's names, node_exporter's
# (services/connectors/prometheus.py), CloudWatch's (services/connectors/cloudwatch.py)
_CPU_SERIES = ("cpu", "node_cpu_utilization", "ec2_cpu_utilization")
_MEM_SERIES = ("mem", "node_memory_utilization")
_CORRECTABLE_SERIES = ("hw_correctable_errors", "node_edac_correctable_errors", "disk_io_errors")
_UNCORRECTABLE_SERIES = ("hw_uncorrectable_errors", "node_edac_uncorrectable_errors")
# EC2 instance type names are family letters, a generation digit, attributes, "." size (m5.large,
# c6gn.xlarge): the generation is the hardware generation the model's `sku` stands for
_INSTANCE_GENERATION = re.compile(r"^[a-z]+(\d+)[a-z-]*\.")


def sku_of(instance_type: str | None) -> str | None:
    """The model's hardware generation ("gen5") of an EC2 instance type; the type itself if unparsable."""
    if not instance_type:
        return None
    match = _INSTANCE_GENERATION.match(instance_type.strip().lower())
    return f"gen{int(match.group(1))}" if match else instance_type.strip()


def _inventory_of(node: str, inventory: Callable[[str], dict[str, Any]] | None) -> dict[str, Any]:
    if inventory is None:
        return {}
    try:
        return dict(inventory(node) or {})
    except LookupError:
        return {}
    except Exception as exc:  # an unreachable inventory is a missing feature, not a failed mitigation
        log.warning("inventory of %s unavailable, its features are missing: %s", node, exc)
        return {}


def _workloads_on(node: str, names: set[str], telemetry) -> int | None:
    """How many services the topology places on the node; None when the topology cannot tell."""
    topology = getattr(telemetry, "topology", None)
    if topology is None:
        return None
    try:
        graph = topology() or {}
    except Exception as exc:
        log.warning("topology unavailable, vm_count of %s is missing: %s", node, exc)
        return None
    placement = graph.get("placement") or {}
    components = graph.get("components") or {}
    known = set(placement.values()) | {c for c, kind in components.items() if kind == "node"}
    if not names & known:
        return None  # a node the topology does not know: absent, not empty
    return sum(1 for host in placement.values() if host in names)


def node_features(node: str, *, telemetry, database_url: str, cluster: str | None,
                  inventory: Callable[[str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Deoxys features from what the platform can observe: inventory, probes, topology, its database.

    A feature no source provides is None (missing): the model imputes it as its model card
    declares and the policy falls back when the decision depends on it - never a made-up constant.
    ``inventory(node)`` is the cloud's record of the node (``Boto3Cloud.inventory``: instance type
    -> sku, creation time -> age).

    ``hw_fault_definitive`` is true when the uncorrectable-error counter (EDAC "UE") grew inside the
    window: ECC detected memory corruption it could not correct, i.e. a faulty DIMM or memory
    controller by definition, not a symptom open to interpretation. It is an evidence flag, so a
    node without EDAC counters (or a flat counter) is False, "no definitive evidence", not missing;
    errors counted before the window stay in ``hw_uncorrectable_errors`` for the model to weigh.
    """
    from services.incidents.models import Incident
    from services.storage.base import session_scope

    series = telemetry.metrics(node, minutes=15)

    def last(names: tuple[str, ...]) -> float | None:
        for name in names:
            points = series.get(name) or []
            if points:
                return float(points[-1][1])
        return None

    def share(value: float | None) -> float | None:  # percent (CloudWatch, the simulator) or fraction
        return None if value is None else min(1.0, max(0.0, value / 100.0 if value > 1.0 else value))

    def count(value: float | None) -> int | None:
        return None if value is None else max(0, int(round(value)))

    def rose(names: tuple[str, ...]) -> bool:
        """A counter of the first series found grew inside the window (a new error during the incident)."""
        for name in names:
            values = [float(v) for _, v in series.get(name) or []]
            if values:
                return max(values[1:], default=values[0]) > values[0]
        return False

    heartbeat = [v for _, v in series.get("heartbeat", [])]
    lost = sum(1 for v in heartbeat if v < 1.0)
    pattern = "none" if lost == 0 else ("sustained" if heartbeat and heartbeat[-1] < 1.0 and lost >= 3 else "intermittent")
    with session_scope(database_url) as session:
        recent = session.scalar(select(func.count(Incident.id)).where(
            Incident.node == node, Incident.opened_at >= datetime.now(UTC) - timedelta(days=30)))
    now = datetime.now(UTC)
    record = _inventory_of(node, inventory)
    created = record.get("created_at")
    age = None
    if isinstance(created, datetime):
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        age = max(0.0, (now - created).total_seconds() / 86400.0)
    names = {node} | ({str(record["instance_id"])} if record.get("instance_id") else set())
    return {
        "node_id": node, "cluster": cluster or "default",
        "hw_correctable_errors": count(last(_CORRECTABLE_SERIES)),
        "hw_uncorrectable_errors": count(last(_UNCORRECTABLE_SERIES)),
        "hw_fault_definitive": rose(_UNCORRECTABLE_SERIES), "heartbeat_loss_count": lost, "heartbeat_pattern": pattern,
        "cpu_util": share(last(_CPU_SERIES)), "mem_util": share(last(_MEM_SERIES)),
        "vm_count": _workloads_on(node, names, telemetry), "node_age_days": age,
        "sku": sku_of(record.get("instance_type")),
        "recent_incidents_30d": max(0, int(recent or 0) - 1), "hour_of_day": now.hour,
    }


class NodeMitigationAdvisor:
    """The actor's hooks: ``recommend`` before a node mitigation, ``record`` after its outcome."""

    def __init__(self, settings: Settings, *, telemetry, policies: PolicyCache | None = None,
                 inventory: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.settings, self.telemetry, self.inventory = settings, telemetry, inventory
        self.policies = policies or PolicyCache()

    def recommend(self, request: dict[str, Any]) -> dict[str, Any] | None:
        policy = active_policy(self.settings, cache=self.policies)
        if policy is None:
            return None
        alert = request.get("alert", {})
        features = node_features(request["node"], telemetry=self.telemetry, database_url=self.settings.database_url,
                                 cluster=alert.get("cluster"), inventory=self.inventory)
        try:
            rec = policy.recommend(features)
        except ValueError as exc:
            log.warning("causal recommendation for %s failed: %s", request["node"], exc)
            return None
        explained = rec.to_dict()
        how = "fallback to legacy" if rec.fallback else (f"override ({rec.override})" if rec.override else "model")
        missing = sorted(k for k, v in features.items() if v is None)
        return {"action": TO_PLATFORM[rec.action], "risk": RISK[rec.action], "explanation": explained,
                "features": features, "missing_features": missing,
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
                progress=None, select_estimator: bool = False, schema: str | None = None) -> dict[str, Any]:
    """Train, refute and (if the gate passes) promote a model into the database registry.

    The events come from `data` (a user's CSV/JSONL file), `synthetic` simulated events, or by
    default the events the actors recorded in the database. Returns the training result with
    `source` and `events_read`; {"skipped": ...} when the database holds no events yet.
    """
    from causal.model import ModelConfig
    from causal.refute import RefuteConfig
    from causal.synthetic import simulate_events
    from causal.train import train

    if schema:
        quick_model = ModelConfig(n_estimators=48, nuisance_max_iter=40, estimator="causal_forest_dml") if quick else None
        return _train_with_schema(settings, data=data, schema=schema, model_config=quick_model, quick=quick)
    source: Any
    if synthetic:
        source, described = simulate_events(synthetic, seed=0).frame, f"synthetic:{synthetic}"
    elif data:
        source, described = data, f"file:{data}"
    else:
        if not count_events(settings.database_url):
            return {"skipped": "no events recorded yet", "source": "database", "events_read": 0}
        source, described = iter_event_rows(settings.database_url), "database"
    # quick: a small forest (no family selection) and a one-contrast gate (the out-of-service
    # decision), tens of seconds not minutes
    model_config = ModelConfig(n_estimators=48, nuisance_max_iter=40, estimator="causal_forest_dml") if quick else None
    refute_config = (RefuteConfig(contrasts=("redeploy",), sample_size=1500, num_simulations=1, n_estimators=16)
                     if quick else None)
    result = train(source, registry=model_registry(settings.database_url), model_config=model_config,
                   refute_config=refute_config, progress=progress, select_estimator=select_estimator)
    out = result.to_dict()
    read = out["metrics"].get("rows_valid", 0) + out["metrics"].get("rows_rejected", 0)
    return {**out, "source": described, "events_read": read}


def _train_with_schema(settings: Settings, *, data: str | None, schema: str, model_config, quick: bool) -> dict[str, Any]:
    """Train on an operator's log as their declared schema describes it; stored, never made the actor's model.

    The actor observes the built-in node features (``node_features``), not the declared ones, so a
    schema model is kept in the registry for inspection and offline use, not promoted.
    """
    from causal.refute import RefuteConfig
    from causal.schema import EventSchema
    from causal.schema_model import train_with_schema

    declared = EventSchema.load(schema)  # SchemaError: one line naming the file
    if not data:
        raise ValueError("--schema needs --data: the stored events follow the built-in schema")
    refute_config = RefuteConfig(sample_size=1500, num_simulations=1, n_estimators=16) if quick else None
    result = train_with_schema(data, declared, registry=model_registry(settings.database_url),
                               model_config=model_config, refute_config=refute_config, promote=False)
    out = result.to_dict()
    out["metrics"].setdefault("warnings", []).append(
        "trained with a declared schema: stored, not promoted (the actor observes the built-in node features)")
    return {**out, "source": f"file:{data} schema:{schema}",
            "events_read": out["metrics"]["rows_valid"] + out["metrics"]["rows_rejected"]}


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
