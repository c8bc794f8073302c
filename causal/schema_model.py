"""Training on an operator's own log, as a declared schema (causal/schema.py) describes it.

`train_with_schema(log, schema)`: read the log (file errors as one line, like causal.data), validate
every row against the declared features and actions (rejected rows with reasons), fit the same
served estimator as causal.model (selected family, calibrated intervals) on the schema's feature
matrix with the declared baseline, then the step shared with causal.train (`gate_and_store`): the
refutation gate per "action vs baseline" contrast, and the version stored with the schema in its
model card. Actions the log never took are listed and never recommended (`best_actions`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from causal.data import EventFileError, read_event_text
from causal.estimation import ServedEstimator
from causal.model import EffectTable, ModelConfig, fit_served, served_effects
from causal.refute import RefutationReport, RefuteConfig, refute_binary
from causal.registry import ModelRegistry, ModelVersion
from causal.schema import EventSchema, SchemaError, SchemaFeaturizer
from causal.train import gate_and_store


def schema_to_dict(schema: EventSchema) -> dict[str, Any]:
    """The declaration as JSON (what the model card shows and `EventSchema.from_dict` reads back)."""
    features = []
    for f in schema.features:
        item: dict[str, Any] = {"name": f.name, "type": f.kind, "missing": f.missing}
        if f.minimum is not None:
            item["min"] = f.minimum
        if f.maximum is not None:
            item["max"] = f.maximum
        if f.categories:
            item["categories"] = list(f.categories)
        features.append(item)
    return {"features": features, "actions": list(schema.actions), "baseline": schema.baseline,
            "out_of_service": sorted(schema.out_of_service), "treatment": schema.treatment,
            "outcome": schema.outcome}


def read_log(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV or JSON-lines log as raw cells, indexed by file line; EventFileError if the file is unusable."""
    path = Path(path)
    text = read_event_text(path)
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        rows, lines = [], []
        for line, chunk in enumerate(text.splitlines(), start=1):
            if not chunk.strip():
                continue
            try:
                row = json.loads(chunk)
            except json.JSONDecodeError as exc:
                raise EventFileError(path, f"line {line}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise EventFileError(path, f"line {line}: JSON line is not an object")
            rows.append(row)
            lines.append(line)
        return pd.DataFrame(rows, index=pd.Index(lines, name="line"))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise EventFileError(path, "file is empty (no header line)")
    reader.fieldnames = [h.strip() for h in reader.fieldnames]
    rows, lines = [], []
    for row in reader:
        rows.append(row)
        lines.append(reader.line_num)
    return pd.DataFrame(rows, columns=reader.fieldnames, index=pd.Index(lines, name="line"))


class SchemaEffectModel:
    """Effects of each declared action vs the declared baseline, on the schema's features."""

    def __init__(self, schema: EventSchema, config: ModelConfig | None = None) -> None:
        self.schema = schema
        # effects are measured against the declared baseline (a copy: the caller's config is not changed)
        self.config = replace(config or ModelConfig(), baseline=schema.baseline)
        self.featurizer = SchemaFeaturizer(schema)
        self.categories: list[str] = [schema.baseline]
        self.untrained_actions: list[str] = []
        self.estimator: ServedEstimator | None = None
        self.n_train = 0
        self.ate: dict[str, float] = {}

    @property
    def trained_actions(self) -> list[str]:
        return [a for a in self.schema.actions if a in self.categories]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return self.featurizer.transform(frame)

    def fit(self, frame: pd.DataFrame) -> SchemaEffectModel:
        """Fit on validated rows (`EventSchema.validate`); actions without rows are left out and listed."""
        schema, cfg = self.schema, self.config
        present = set(frame[schema.treatment])
        if schema.baseline not in present:
            raise ValueError(f"no logged events for the baseline action {schema.baseline!r}: "
                             "effects are measured against it")
        self.untrained_actions = schema.actions_without_data(frame)
        self.categories = [schema.baseline, *(a for a in schema.actions if a != schema.baseline and a in present)]
        if len(self.categories) < 2:
            raise ValueError(f"only {self.categories} logged: no action to compare")
        self.featurizer.fit(frame)
        X = self.matrix(frame)
        self.estimator = fit_served(frame[schema.outcome].to_numpy(float), frame[schema.treatment], X,
                                    categories=self.categories, config=cfg)
        self.n_train = len(frame)
        cme = self.estimator.const_marginal_effect(X)
        self.ate = {schema.baseline: 0.0, **{a: float(cme[:, j].mean()) for j, a in enumerate(self.categories[1:])}}
        return self

    def effects(self, frame: pd.DataFrame, *, alpha: float = 0.1) -> EffectTable:
        """Effects and calibrated intervals per declared action (schema order); NaN for actions without data."""
        if self.estimator is None:
            raise RuntimeError("model is not fitted")
        X = self.matrix(frame)
        effect, lower, upper = served_effects(self.estimator, X, categories=self.categories,
                                              actions=self.schema.actions, alpha=alpha)
        return EffectTable(effect, lower, upper, np.full(effect.shape, np.nan), self.schema.baseline, alpha)

    def best_actions(self, frame: pd.DataFrame) -> np.ndarray:
        """The action with the lowest predicted outcome per row, among actions with data only."""
        effect = self.effects(frame).effect
        return np.array(self.schema.actions, dtype=object)[np.where(np.isnan(effect), np.inf, effect).argmin(axis=1)]

    def metadata(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "schema": schema_to_dict(self.schema),
                "categories": self.categories, "n_train": self.n_train, "ate_vs_baseline": self.ate,
                "features": self.featurizer.feature_names, "untrained_actions": self.untrained_actions,
                "missing_values": {"method": "declared 'indicator' features: training median plus a "
                                             "<name>_missing column; 'reject' features: row rejected",
                                   "impute_with": dict(self.featurizer.medians_)},
                "estimator": None if self.estimator is None else self.estimator.card()}


@dataclass
class SchemaTrainResult:
    version: ModelVersion | None
    promoted: bool
    metrics: dict[str, Any]
    refutation: dict[str, Any] | None
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    model: SchemaEffectModel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": None if self.version is None else self.version.version, "promoted": self.promoted,
                "metrics": self.metrics, "refutation": self.refutation, "rejected_rows": self.rejected_rows[:50]}


def refute_with_schema(frame: pd.DataFrame, model: SchemaEffectModel, *, config: RefuteConfig | None = None
                       ) -> RefutationReport:
    """The gate of causal.refute on the schema's features, one contrast per trained action vs the baseline."""
    cfg = config or RefuteConfig()
    schema = model.schema
    report = RefutationReport(config=cfg.to_dict())
    rng = np.random.default_rng(cfg.random_state)
    contrasts = [a for a in model.trained_actions if a != schema.baseline and (not cfg.contrasts or a in cfg.contrasts)]
    with threadpool_limits(limits=model.config.omp_threads):
        for action in contrasts:
            rows = frame[frame[schema.treatment].isin([action, schema.baseline])]
            if len(rows) > cfg.sample_size:
                rows = rows.iloc[np.sort(rng.choice(len(rows), size=cfg.sample_size, replace=False))]
            t = (rows[schema.treatment].to_numpy() == action).astype(int)
            try:
                sub = refute_binary(model.matrix(rows), t, rows[schema.outcome].to_numpy(float), config=cfg,
                                    contrast=f"{action} vs {schema.baseline}", omp_threads=model.config.omp_threads)
            except Exception as exc:  # a crashed check fails the gate, not the run
                report.errors.append(f"{action}: {type(exc).__name__}: {exc}")
                continue
            report.checks += sub.checks
            report.errors += sub.errors
    if not contrasts:
        report.errors.append("no contrast with logged rows for both sides")
    return report


def train_with_schema(data: str | os.PathLike[str] | pd.DataFrame, schema: EventSchema, *,
                      registry: ModelRegistry | None, model_config: ModelConfig | None = None,
                      refute_config: RefuteConfig | None = None, run_refutation: bool = True,
                      promote: bool = True) -> SchemaTrainResult:
    """Validate the log against `schema`, fit, refute, store; promote when the gate passes and `promote`.

    A log lacking declared columns, or with no valid row, raises EventFileError (one line naming the
    file) for a path and SchemaError/ValueError for a table.
    """
    started = time.perf_counter()
    raw = read_log(data) if isinstance(data, str | os.PathLike) else data
    try:
        frame, errors = schema.validate(raw)
    except SchemaError as exc:
        if isinstance(data, str | os.PathLike):
            raise EventFileError(data, str(exc)) from None
        raise
    # a file's rows are indexed by their line; a table's by position
    rejected = [{"line": int(raw.index[pos]) if isinstance(data, str | os.PathLike) else pos, "reason": reason}
                for pos, reason in errors]
    if frame.empty:
        why = f"; first: line {rejected[0]['line']}: {rejected[0]['reason']}" if rejected else ""
        problem = f"no valid rows ({len(rejected)} rejected{why})"
        if isinstance(data, str | os.PathLike):
            raise EventFileError(data, problem)
        raise ValueError(problem)
    model = SchemaEffectModel(schema, model_config).fit(frame)
    metrics: dict[str, Any] = {"rows_valid": len(frame), "rows_rejected": len(rejected),
                               "action_counts": {str(k): int(v) for k, v in frame[schema.treatment].value_counts().items()},
                               "schema_features": len(schema.features)}
    version, promoted, refutation = gate_and_store(
        model, metrics=metrics, registry=registry, promote=promote, started=started,
        refute=(lambda: refute_with_schema(frame, model, config=refute_config).to_dict()) if run_refutation else None,
        data_window={"rows": len(frame), "actions": model.trained_actions},
        extra={"model": model.metadata(), "schema": schema_to_dict(schema)})
    metrics["total_seconds"] = round(time.perf_counter() - started, 2)
    return SchemaTrainResult(version, promoted, metrics, refutation, rejected, model)

