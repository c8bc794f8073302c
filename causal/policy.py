"""The mitigation policy: pick the action with the lowest predicted downtime, or don't trust it.

Three layers, in the order they are applied (Deoxys' design):

1. **Model choice**: argmin over actions of effect(a) + capacity_weight * capacity_cost(a).
2. **Fallback** to the legacy rule when the model is not sure: it is not at least
   `confidence` sure (one-sided, from the normal interval of "best action vs what legacy would
   do") that switching away from legacy lowers downtime, or that interval is wider than
   `max_interval_width` (the model knows next to nothing), or the node is outside the support of
   the data (the logging policy almost never took the model's action for such nodes).
   WHY these defaults: a two-sided 90% "interval must exclude zero" test sent ~20% of nodes to
   legacy and mostly to nodes where the model was right (the benchmark measures how often legacy
   is truly better among the nodes that fall back); an absolute width threshold hit exactly the
   high-stakes nodes (huge effects have wide intervals). One-sided 80% confidence, a 3-hour
   width cap and a 1% support floor fall back far less often and on nodes where the model is
   wrong several times more often than on average. Operators can tighten them.
3. **Overriding** for reliability and resources: an operator pin wins over everything, a
   definitive hardware fault forces repair, and the capacity guard stops a cluster from having
   too many nodes out of service at once (the node then gets the best in-service action).

Every decision is returned as a `Recommendation` that explains itself (effects and intervals of
every action, the choice, fallback/override and why), JSON-safe through `to_dict()`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from causal.data import (
    ACTIONS,
    OUT_OF_SERVICE_ACTIONS,
    LoadResult,
    RowError,
    missing_mask,
    validate_frame,
)
from causal.legacy import LegacyRule, legacy_rule
from causal.model import MitigationEffectModel


@dataclass
class PolicyConfig:
    """Thresholds of the policy; all are operator-tunable."""

    alpha: float = 0.1                     # displayed intervals are (1 - alpha) two-sided
    fallback_enabled: bool = True
    require_significant: bool = True       # fallback unless the model's gain over legacy is ...
    confidence: float = 0.8                # ... at least this sure (one-sided, normal interval)
    max_interval_width: float = 180.0      # minutes; a wider (1-alpha) best-vs-legacy interval -> fallback
    min_propensity: float = 0.01           # support: P(best action | node) below this -> fallback
    capacity_weight: float = 0.0           # minutes of downtime one capacity-hour is worth
    hard_evidence_action: str = "repair"   # forced when hw_fault_definitive is true
    hard_evidence_enabled: bool = True
    max_out_of_service_fraction: float = 0.1  # capacity guard, per cluster
    # support: a node with imputed (unobserved) features falls back when the model's choice
    # changes as an imputed feature moves over its plausible training values (model card)
    imputation_check: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ClusterCapacity:
    """What the capacity guard needs to know about a cluster right now."""

    total_nodes: int
    out_of_service: int = 0


def _num(value: float) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


@dataclass
class ActionEstimate:
    """One action's predicted effect on VM downtime vs the baseline action, with its interval."""

    effect: float
    lower: float
    upper: float
    propensity: float
    capacity_cost: float
    score: float


@dataclass
class Recommendation:
    """The decision for one node and everything needed to explain it."""

    node_id: str
    cluster: str
    action: str                       # what to do
    decided_by: str                   # "model" | "fallback" | "override"
    model_action: str                 # the model's argmin
    legacy_action: str                # what the legacy rule says
    baseline: str                     # effects are relative to this action
    estimates: dict[str, ActionEstimate]
    best_vs_legacy: dict[str, float] | None   # effect of model_action vs legacy_action + interval
    fallback: bool = False
    fallback_reasons: list[str] = field(default_factory=list)
    override: str | None = None       # "operator_pin" | "hard_evidence" | "capacity_guard"
    override_reason: str | None = None
    model_version: str | None = None
    alpha: float = 0.1
    imputed: dict[str, Any] = field(default_factory=dict)  # feature -> value the model used instead

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (plain floats, None for non-finite numbers)."""
        return {
            "node_id": self.node_id, "cluster": self.cluster, "action": self.action,
            "decided_by": self.decided_by, "model_action": self.model_action,
            "legacy_action": self.legacy_action, "baseline": self.baseline,
            "interval_level": round(1.0 - self.alpha, 4),
            "estimates": {a: {k: _num(v) for k, v in asdict(e).items()}
                          for a, e in self.estimates.items()},
            "best_vs_legacy": None if self.best_vs_legacy is None
            else {k: _num(v) for k, v in self.best_vs_legacy.items()},
            "fallback": self.fallback, "fallback_reasons": list(self.fallback_reasons),
            "override": self.override, "override_reason": self.override_reason,
            "model_version": self.model_version,
            "imputed_features": {k: _show(v) for k, v in self.imputed.items()},
        }


@dataclass
class BatchResult:
    """Recommendations for the valid rows, the rejected rows, and the rates operators watch."""

    recommendations: list[Recommendation]
    errors: list[RowError] = field(default_factory=list)

    @property
    def actions(self) -> np.ndarray:
        return np.array([r.action for r in self.recommendations], dtype=object)

    @property
    def fallback_rate(self) -> float:
        n = len(self.recommendations)
        return sum(r.fallback for r in self.recommendations) / n if n else 0.0

    def summary(self) -> dict[str, Any]:
        n = len(self.recommendations)
        return {
            "nodes": n, "rejected": len(self.errors), "fallback_rate": round(self.fallback_rate, 4),
            "decided_by": dict(Counter(r.decided_by for r in self.recommendations)),
            "overrides": dict(Counter(r.override for r in self.recommendations if r.override)),
            "actions": dict(Counter(r.action for r in self.recommendations)),
        }


class MitigationPolicy:
    """Turn effect estimates into decisions; see the module docstring for the layers."""

    def __init__(self, model: MitigationEffectModel, *, config: PolicyConfig | None = None,
                 legacy: LegacyRule = legacy_rule, model_version: str | None = None) -> None:
        self.model = model
        self.config = config or PolicyConfig()
        self.legacy = legacy
        self.model_version = model_version
        self.stats: Counter[str] = Counter()

    @property
    def fallback_rate(self) -> float:
        """Share of all recommendations so far that fell back to the legacy rule."""
        total = self.stats["recommendations"]
        return self.stats["fallback"] / total if total else 0.0

    def recommend(self, node: Mapping[str, Any], *, pin: str | None = None,
                  clusters: Mapping[str, ClusterCapacity] | None = None) -> Recommendation:
        """Recommend for one node (a dict of features). Raises ValueError on an invalid node."""
        frame = pd.DataFrame([dict(node)])
        pins = {str(node.get("node_id")): pin} if pin else None
        result = self.recommend_batch(frame, pins=pins, clusters=clusters)
        if result.errors:
            raise ValueError(f"invalid node: {result.errors[0].reason}")
        return result.recommendations[0]

    def recommend_batch(self, nodes: pd.DataFrame, *, pins: Mapping[str, str] | None = None,
                        clusters: Mapping[str, ClusterCapacity] | None = None) -> BatchResult:
        """Recommend for many nodes at once (vectorized model calls).

        `pins` maps node_id -> action forced by an operator. `clusters` maps cluster -> current
        capacity; the guard counts the batch's own out-of-service decisions as it goes, so a
        batch cannot drain a cluster either. Clusters not in `clusters` are not guarded.
        Invalid rows are returned in `errors` (with their 0-based position), not scored.
        """
        checked: LoadResult = validate_frame(nodes, require_outcomes=False)
        frame = checked.frame
        cfg = self.config
        for action in (pins or {}).values():
            if action not in ACTIONS:
                raise ValueError(f"pinned action {action!r} not one of {ACTIONS}")
        n = len(frame)
        if n == 0:
            return BatchResult([], checked.errors)
        table = self.model.effects(frame, alpha=cfg.alpha)
        cap = np.array([self.model.capacity_cost.get(a, 0.0) for a in ACTIONS])
        cap = np.nan_to_num(cap, nan=0.0)
        # an action without logged events has no estimate (NaN): it is never the best one
        score = np.where(np.isnan(table.effect), np.inf, table.effect + cfg.capacity_weight * cap[None, :])
        trained = set(getattr(self.model, "trained_actions", ACTIONS))
        best = score.argmin(axis=1)
        actions = np.array(ACTIONS, dtype=object)
        model_action = actions[best]
        legacy_action = np.asarray(self.legacy(frame), dtype=object)
        # the legacy rule may name an action the log never saw: the model's choice stands, since
        # falling back would recommend an action without data
        legacy_known = np.array([a in trained for a in legacy_action], dtype=bool)
        differs = (model_action != legacy_action) & legacy_known
        contrast = np.full((n, 3), np.nan)
        if differs.any():
            point, lo, hi = self.model.contrast_interval(
                frame.loc[differs], from_actions=legacy_action[differs],
                to_actions=model_action[differs], alpha=cfg.alpha)
            contrast[differs] = np.column_stack([point, lo, hi])
        legacy_idx = np.array([ACTIONS.index(a) for a in legacy_action])
        cap_shift = cfg.capacity_weight * (cap[best] - cap[legacy_idx])
        # econml's intervals are normal: recover the standard error of the contrast from the
        # (1 - alpha) interval and test "switching lowers downtime" one-sided at `confidence`
        se = (contrast[:, 2] - contrast[:, 1]) / (2.0 * NormalDist().inv_cdf(1.0 - cfg.alpha / 2.0))
        sure_upper = contrast[:, 0] + NormalDist().inv_cdf(cfg.confidence) * se
        best_propensity = table.propensity[np.arange(n), best]
        imputed, imputation_reasons = self._imputation_support(frame, model_action, cap)

        guard = {c: ClusterCapacity(v.total_nodes, v.out_of_service) for c, v in (clusters or {}).items()}
        pins = dict(pins or {})
        recs: list[Recommendation] = []
        for i in range(n):
            row = frame.iloc[i]
            estimates = {
                a: ActionEstimate(effect=float(table.effect[i, k]), lower=float(table.lower[i, k]),
                                  upper=float(table.upper[i, k]),
                                  propensity=float(table.propensity[i, k]),
                                  capacity_cost=float(cap[k]), score=float(score[i, k]))
                for k, a in enumerate(ACTIONS)}
            reasons: list[str] = []
            best_vs_legacy = None
            if differs[i]:
                point, lo, hi = contrast[i]
                best_vs_legacy = {"effect": point, "lower": lo, "upper": hi}
                # not "< 0" rather than ">= 0": an interval that cannot be computed (NaN) is not sure
                if cfg.require_significant and not sure_upper[i] + cap_shift[i] < 0.0:
                    reasons.append(f"not {cfg.confidence:.0%} sure that {model_action[i]} beats "
                                   f"{legacy_action[i]}: effect {point:+.1f} min, upper bound "
                                   f"{sure_upper[i]:+.1f} >= 0")
                if not hi - lo <= cfg.max_interval_width:
                    reasons.append(f"interval width {hi - lo:.1f} min > {cfg.max_interval_width:g}")
            if best_propensity[i] < cfg.min_propensity:
                reasons.append(f"outside support: P({model_action[i]}|node)={best_propensity[i]:.3f}"
                               f" < {cfg.min_propensity:g}")
            reasons += imputation_reasons.get(i, [])
            if not legacy_known[i]:
                reasons = []
            fallback = bool(cfg.fallback_enabled and differs[i] and reasons)
            action = legacy_action[i] if fallback else model_action[i]
            decided_by = "fallback" if fallback else "model"
            override = override_reason = None

            node_id, cluster = str(row["node_id"]), str(row["cluster"])
            if node_id in pins:
                override, action = "operator_pin", pins[node_id]
                override_reason = f"operator pinned {action}"
            elif cfg.hard_evidence_enabled and bool(row["hw_fault_definitive"]) \
                    and action != cfg.hard_evidence_action and cfg.hard_evidence_action in trained:
                override, action = "hard_evidence", cfg.hard_evidence_action
                override_reason = "definitive hardware fault forces " + action
            elif action in OUT_OF_SERVICE_ACTIONS and cluster in guard:
                state = guard[cluster]
                limit = cfg.max_out_of_service_fraction * max(1, state.total_nodes)
                if state.out_of_service + 1 > limit:
                    in_service = [k for k, a in enumerate(ACTIONS)
                                  if a not in OUT_OF_SERVICE_ACTIONS and a in trained]
                    k_best = min(in_service, key=lambda k: score[i, k])
                    override_reason = (f"cluster {cluster} has {state.out_of_service}/"
                                       f"{state.total_nodes} nodes out of service (limit "
                                       f"{cfg.max_out_of_service_fraction:.0%}); {action} -> "
                                       f"{ACTIONS[k_best]}")
                    override, action = "capacity_guard", ACTIONS[k_best]
            if override:
                decided_by = "override"
            if action in OUT_OF_SERVICE_ACTIONS and cluster in guard:
                guard[cluster].out_of_service += 1
            recs.append(Recommendation(
                node_id=node_id, cluster=cluster, action=str(action), decided_by=decided_by,
                model_action=str(model_action[i]), legacy_action=str(legacy_action[i]),
                baseline=table.baseline, estimates=estimates, best_vs_legacy=best_vs_legacy,
                fallback=fallback, fallback_reasons=reasons if fallback else [],
                override=override, override_reason=override_reason,
                model_version=self.model_version, alpha=cfg.alpha, imputed=imputed.get(i, {})))
        self.stats["recommendations"] += len(recs)
        self.stats["fallback"] += sum(r.fallback for r in recs)
        for r in recs:
            if r.override:
                self.stats[f"override:{r.override}"] += 1
        return BatchResult(recs, checked.errors)

    def _imputation_support(self, frame: pd.DataFrame, model_action: np.ndarray, cap: np.ndarray
                            ) -> tuple[dict[int, dict[str, Any]], dict[int, list[str]]]:
        """Per row: the imputed features with the values used, and why the decision lacks support.

        Each imputed feature is moved, one at a time, over its plausible training values (the
        model card's `plausible_values`); if the model would then choose another action, the
        decision rests on something the platform did not observe and is treated as outside the
        model's support. Nothing is imputed silently: every imputed feature is in the explanation.
        """
        absent = missing_mask(frame)
        rows = np.flatnonzero(absent.to_numpy().any(axis=1))
        if not len(rows):
            return {}, {}
        imputation = getattr(self.model, "imputation", None)
        values = imputation.values if imputation is not None else {}
        spans = imputation.spans if imputation is not None else {}
        imputed = {int(i): {str(f): values.get(f) for f in absent.columns[absent.iloc[i].to_numpy(bool)]}
                   for i in rows}
        if not self.config.imputation_check:
            return imputed, {}
        variants: list[dict[str, Any]] = []
        tried: list[tuple[int, str, Any]] = []
        for i, features in imputed.items():
            base = frame.iloc[i].to_dict()
            for name in features:
                for value in spans.get(name, []):
                    variants.append({**base, name: value})
                    tried.append((i, name, value))
        if not variants:
            return imputed, {}
        effect = self.model.point_effects(pd.DataFrame(variants, columns=frame.columns))
        score = np.where(np.isnan(effect), np.inf, effect + self.config.capacity_weight * cap[None, :])
        choice = np.array(ACTIONS, dtype=object)[score.argmin(axis=1)]
        found: dict[int, dict[str, str]] = {}
        for (i, name, value), action in zip(tried, choice, strict=True):
            if action != model_action[i] and name not in found.get(i, {}):  # one line per feature
                found.setdefault(i, {})[name] = (
                    f"reduced support: {name} was not observed (imputed {_show(imputed[i][name])}); with "
                    f"{name}={_show(value)} the model would pick {action}, not {model_action[i]}")
        reasons = {i: list(lines.values()) for i, lines in found.items()}
        return imputed, reasons


def _show(value: Any) -> Any:
    return _num(value) if isinstance(value, int | float) else value
