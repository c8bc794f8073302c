"""Training entry point: validate -> fit -> evaluate -> refute -> register -> promote.

A plain function with a progress callback so the lead can wrap it in a Celery task (queue
`causal`) and in the CLI (`aiops causal train`, rich progress bar) without this library knowing
about either. The refutation gate decides promotion: a version that fails it is stored (for
inspection) but not made active.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd

from causal.data import (
    OUTCOME,
    TREATMENT,
    EventFileError,
    LoadResult,
    load_events,
    validate_frame,
    validate_records,
)
from causal.evaluation import dr_policy_value
from causal.legacy import legacy_rule
from causal.model import MitigationEffectModel, ModelConfig
from causal.policy import MitigationPolicy, PolicyConfig
from causal.refute import RefuteConfig, refute_model
from causal.registry import ModelRegistry, ModelVersion

Progress = Callable[[str, float], None]


@dataclass
class TrainResult:
    version: ModelVersion | None
    promoted: bool
    metrics: dict[str, Any]
    refutation: dict[str, Any] | None
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    model: MitigationEffectModel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": None if self.version is None else self.version.version,
                "promoted": self.promoted, "metrics": self.metrics, "refutation": self.refutation,
                "rejected_rows": self.rejected_rows[:50]}


def _noop(stage: str, fraction: float) -> None:
    return None


EventSource: TypeAlias = str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, Any]]


def load_source(data: EventSource) -> LoadResult:
    """Validate an event table given as a file path (CSV/JSONL), a DataFrame, or rows (mappings).

    Rows let a caller stream events out of any store (the platform reads its database) without this
    library knowing where they live; a rejected row's `line` is then its 1-based position.
    """
    if isinstance(data, pd.DataFrame):
        return validate_frame(data)
    if isinstance(data, str | os.PathLike):
        return load_events(data)
    return validate_records(enumerate(data, start=1))


def train(data: EventSource, *, registry: ModelRegistry | str | os.PathLike[str] | None,
          model_config: ModelConfig | None = None, policy_config: PolicyConfig | None = None,
          refute_config: RefuteConfig | None = None, run_refutation: bool = True,
          promote: bool = True, holdout_fraction: float = 0.2, seed: int = 0,
          progress: Progress | None = None, select_estimator: bool = False,
          selection_rows: int = 4000) -> TrainResult:
    """Train a new model version from an event table (path to CSV/JSONL, a DataFrame, or rows).

    `registry` is where the version goes: a ModelRegistry over any store, a directory path, or
    None to fit and evaluate without storing anything.

    `select_estimator` scores candidate CATE families (causal.selection) per action-vs-baseline
    contrast on up to `selection_rows` rows and puts the cards in `metrics["estimator_selection"]`
    (the model card). Independently of these per-contrast cards, the served estimator is the one
    `model_config.estimator` names ("stack"/"select": chosen by the same scorer over all actions at
    once; see causal.estimation) and its card is in `metrics["served_estimator"]`.

    Stages reported to `progress(stage, fraction_of_stage)`: load, fit, evaluate, refute, save.
    A held-out slice of the (time-ordered) events is used for an off-policy estimate of the
    learned policy vs the legacy rule; the final model is then fit on all valid rows.
    Raises ValueError if no valid rows remain or an action never occurs.
    """
    report = progress or _noop
    started = time.perf_counter()
    report("load", 0.0)
    loaded = load_source(data)
    frame = loaded.frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if frame.empty:
        first = loaded.errors[0] if loaded.errors else None
        why = f"; first: line {first.line}: {first.reason}" if first else ""
        problem = f"no valid rows ({len(loaded.errors)} rejected{why})"
        if isinstance(data, str | os.PathLike):
            raise EventFileError(data, problem)
        raise ValueError(problem)
    report("load", 1.0)
    mcfg = model_config or ModelConfig(random_state=seed)

    metrics: dict[str, Any] = {"rows_valid": len(frame), "rows_rejected": len(loaded.errors),
                               "action_counts": frame[TREATMENT].value_counts().to_dict()}
    n_hold = int(len(frame) * holdout_fraction)
    if n_hold >= 200:
        report("evaluate", 0.0)
        train_part, hold = frame.iloc[:-n_hold], frame.iloc[-n_hold:].reset_index(drop=True)
        scout = MitigationEffectModel(mcfg).fit(train_part)
        policy = MitigationPolicy(scout, config=policy_config)
        batch = policy.recommend_batch(hold.drop(columns=[TREATMENT]))
        # the off-policy estimate featurizes the rows itself: give it the scout's declared imputation
        filled = scout.imputation.apply(hold)
        learned = dr_policy_value(filled, batch.actions, seed=seed, omp_threads=mcfg.omp_threads)
        legacy = dr_policy_value(filled, legacy_rule(hold), seed=seed, omp_threads=mcfg.omp_threads)
        metrics["holdout"] = {
            "rows": n_hold, "observed_mean_downtime": float(hold[OUTCOME].mean()),
            "dr_downtime_learned": learned.dr, "dr_downtime_learned_se": learned.dr_se,
            "dr_downtime_legacy": legacy.dr, "dr_downtime_legacy_se": legacy.dr_se,
            "fallback_rate": batch.fallback_rate}
        report("evaluate", 1.0)

    report("fit", 0.0)
    t0 = time.perf_counter()
    model = MitigationEffectModel(mcfg).fit(frame)
    metrics["fit_seconds"] = round(time.perf_counter() - t0, 2)
    if any(model.imputation.missing_in_training.values()):
        metrics["missing_values"] = {k: v for k, v in model.imputation.missing_in_training.items() if v}
    report("fit", 1.0)

    if select_estimator:
        metrics["estimator_selection"] = _selection_cards(frame, model, rows=selection_rows, seed=seed)

    def refute() -> dict[str, Any]:
        return refute_model(model.imputation.apply(frame), model_config=mcfg, config=refute_config,
                            actions=tuple(model.trained_actions),
                            progress=lambda f: report("refute", f)).to_dict()

    if isinstance(registry, str | os.PathLike):
        registry = ModelRegistry(registry)
    window = {"rows": len(frame), "first_timestamp": str(frame["timestamp"].iloc[0]),
              "last_timestamp": str(frame["timestamp"].iloc[-1]), "actions": list(model.trained_actions)}
    outcome = gate_and_store(model, metrics=metrics, refute=refute if run_refutation else None,
                             registry=registry, promote=promote, data_window=window, started=started,
                             extra={"model": model.metadata(),
                                    "policy_config": (policy_config or PolicyConfig()).to_dict()},
                             progress=report)
    version, promoted, refutation = outcome
    metrics["total_seconds"] = round(time.perf_counter() - started, 2)
    return TrainResult(version=version, promoted=promoted, metrics=metrics, refutation=refutation,
                       rejected_rows=[e.to_dict() for e in loaded.errors], model=model)


class ServedModel(Protocol):
    """What the shared fit-and-gate step needs of a fitted model (both effect models have it)."""

    ate: dict[str, float]
    untrained_actions: list[str]

    @property
    def trained_actions(self) -> list[str]: ...

    def metadata(self) -> dict[str, Any]: ...


def gate_and_store(model: ServedModel, *, metrics: dict[str, Any], refute: Callable[[], dict[str, Any]] | None,
                   registry: ModelRegistry | None, promote: bool, data_window: dict[str, Any],
                   extra: dict[str, Any], started: float, progress: Progress | None = None
                   ) -> tuple[ModelVersion | None, bool, dict[str, Any] | None]:
    """The step after a fit, the same for every model: card metrics, gate, store, promote.

    Records the effects vs the baseline, the served estimator's card (selection and interval
    calibration) and any untrained actions in `metrics`; runs `refute` (None: no gate); stores the
    version when a registry is given and promotes it only if the gate ran and passed and `promote`.
    Returns (version, promoted, refutation report as a dict).
    """
    report = progress or _noop
    metrics["ate_vs_baseline"] = model.ate
    card = model.metadata().get("estimator")
    if card:
        metrics["served_estimator"] = card
    if model.untrained_actions:
        # said, not hidden: these actions are never recommended by this version
        metrics["untrained_actions"] = list(model.untrained_actions)
        metrics["warnings"] = [f"no logged events for {model.untrained_actions}: trained on "
                               f"{model.trained_actions} only; the model never recommends the others"]
    refutation = None
    if refute is not None:
        report("refute", 0.0)
        t0 = time.perf_counter()
        refutation = refute()
        metrics["refute_seconds"] = round(time.perf_counter() - t0, 2)
        report("refute", 1.0)
    version, promoted = None, False
    if registry is not None:
        report("save", 0.0)
        metrics["total_seconds"] = round(time.perf_counter() - started, 2)
        version = registry.save(model, metrics=_json_safe(metrics), data_window=data_window,
                                refutation=refutation, extra=_json_safe(extra))
        if promote and refutation is not None and refutation["passed"]:
            version, promoted = registry.promote(version.version), True
        report("save", 1.0)
    return version, promoted, refutation


def _selection_cards(frame: pd.DataFrame, model: MitigationEffectModel, *, rows: int,
                     seed: int) -> dict[str, Any]:
    """Per contrast "action vs baseline": candidates, out-of-sample scores and the choice."""
    from causal.selection import EstimatorSelector, default_candidates

    baseline = model.config.baseline
    rng = np.random.default_rng(seed)
    cards: dict[str, Any] = {}
    for action in model.trained_actions:
        if action == baseline:
            continue
        part = frame[frame[TREATMENT].isin([action, baseline])]
        if len(part) > rows:
            part = part.iloc[np.sort(rng.choice(len(part), size=rows, replace=False))]
        t = (part[TREATMENT].to_numpy() == action).astype(int)
        try:
            selector = EstimatorSelector(candidates=default_candidates(seed=seed, rounds=60, trees=60),
                                         seed=seed, refit_on_all=False,
                                         omp_threads=model.config.omp_threads)
            selector.fit(part[OUTCOME].to_numpy(float), t, X=model.matrix(part))
            cards[f"{action} vs {baseline}"] = selector.card.to_dict()
        except Exception as exc:  # the card is information; a failure must not end training
            cards[f"{action} vs {baseline}"] = {"error": f"{type(exc).__name__}: {exc}"}
    return cards


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
