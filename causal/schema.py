"""A declared event schema: an operator's own features and actions, validated before any training.

WHY: the built-in table (causal/data.py) knows 12 node features and 5 actions. A fleet with other
signals or other remedies declares them here (a JSON file or a settings dict) and gets a clear
error for a bad declaration, a typed and validated table, and a numeric matrix with a stable
column order, instead of a model silently trained on columns it misread.

Shape of a schema (JSON)::

    {"features": [{"name": "ecc_errors", "type": "int", "min": 0},
                  {"name": "instance_type", "type": "cat", "categories": ["m5", "c6"]},
                  {"name": "age_days", "type": "float", "min": 0, "missing": "indicator"}],
     "actions": ["wait", "reboot", "migrate"], "baseline": "reboot",
     "out_of_service": ["migrate"]}

`missing` says how a feature that is not available is handled: "reject" (the row is invalid) or
"indicator" (the value is imputed with the training median and a 0/1 "<name>_missing" column
is added, so the model can learn that absence itself matters). Nothing is ever a made-up constant.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KINDS = frozenset({"int", "float", "bool", "cat"})
MISSING_POLICIES = frozenset({"reject", "indicator"})


class SchemaError(ValueError):
    """The schema declaration itself is wrong (one line saying what and where)."""


@dataclass(frozen=True)
class FeatureSpec:
    """One declared feature: its type, range or categories, and how a missing value is handled."""

    name: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    missing: str = "reject"


@dataclass(frozen=True)
class EventSchema:
    """Features and actions of an operator's event log, with the baseline of every effect."""

    features: tuple[FeatureSpec, ...]
    actions: tuple[str, ...]
    baseline: str
    out_of_service: frozenset[str] = field(default_factory=frozenset)
    treatment: str = "action"
    outcome: str = "vm_downtime_min"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventSchema:
        """Build and validate a schema from a mapping (settings, parsed JSON); raises SchemaError."""
        if not isinstance(data, Mapping):
            raise SchemaError("schema must be an object with 'features' and 'actions'")
        raw_features = data.get("features")
        if not isinstance(raw_features, list) or not raw_features:
            raise SchemaError("'features' must be a non-empty list")
        features = []
        for i, item in enumerate(raw_features):
            if not isinstance(item, Mapping) or not item.get("name"):
                raise SchemaError(f"features[{i}]: needs a 'name'")
            features.append(FeatureSpec(
                name=str(item["name"]), kind=str(item.get("type", "")),
                minimum=item.get("min"), maximum=item.get("max"),
                categories=tuple(str(c) for c in item.get("categories", ())),
                missing=str(item.get("missing", "reject"))))
        actions = data.get("actions")
        if not isinstance(actions, list):
            raise SchemaError("'actions' must be a list of action names")
        schema = cls(features=tuple(features), actions=tuple(str(a) for a in actions),
                     baseline=str(data.get("baseline", "")),
                     out_of_service=frozenset(str(a) for a in data.get("out_of_service", ())),
                     treatment=str(data.get("treatment", "action")),
                     outcome=str(data.get("outcome", "vm_downtime_min")))
        schema.check()
        return schema

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EventSchema:
        """Read a JSON schema file; every problem is a SchemaError naming the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise SchemaError(f"{path}: file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"{path}: not a JSON schema: {exc}") from None
        try:
            return cls.from_dict(data)
        except SchemaError as exc:
            raise SchemaError(f"{path}: {exc}") from None

    def check(self) -> None:
        """Raise SchemaError on the first inconsistency of the declaration."""
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"features declared twice: {dupes}")
        reserved = {self.treatment, self.outcome}
        if reserved & set(names):
            raise SchemaError(f"features may not be the treatment or outcome column: {sorted(reserved & set(names))}")
        for f in self.features:
            if f.kind not in KINDS:
                raise SchemaError(f"feature {f.name!r}: type {f.kind!r} not one of {sorted(KINDS)}")
            if f.missing not in MISSING_POLICIES:
                raise SchemaError(f"feature {f.name!r}: missing {f.missing!r} not one of {sorted(MISSING_POLICIES)}")
            if f.kind == "cat" and not f.categories:
                raise SchemaError(f"feature {f.name!r}: type 'cat' needs 'categories'")
            if f.minimum is not None and f.maximum is not None and f.minimum > f.maximum:
                raise SchemaError(f"feature {f.name!r}: min {f.minimum} > max {f.maximum}")
        if len(self.actions) < 2 or len(set(self.actions)) != len(self.actions):
            raise SchemaError(f"'actions' needs at least two distinct actions, got {list(self.actions)}")
        if self.baseline not in self.actions:
            raise SchemaError(f"baseline {self.baseline!r} not one of the actions {list(self.actions)}")
        unknown = sorted(self.out_of_service - set(self.actions))
        if unknown:
            raise SchemaError(f"out_of_service names undeclared actions {unknown}")

    # ------------------------------------------------------------------------------------------

    def validate(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
        """(valid typed rows, [(row position, reason)]) for a log against this schema.

        Missing columns are a whole-table problem (SchemaError naming them); a bad cell rejects
        its row with a reason; an undeclared action rejects its row.
        """
        needed = [f.name for f in self.features if f.missing == "reject"] + [self.treatment, self.outcome]
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise SchemaError(f"log lacks declared columns {absent}")
        keep = np.ones(len(frame), dtype=bool)
        errors: list[tuple[int, str]] = []
        out = pd.DataFrame(index=frame.index)
        for f in self.features:
            values = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame),
                                                                              index=frame.index)
            parsed, bad = _parse_column(f, values)
            for pos in np.flatnonzero(bad & keep):
                errors.append((int(pos), f"{f.name}: {bad_reason(f, values.iloc[pos])}"))
            keep &= ~bad
            out[f.name] = parsed
        action = frame[self.treatment].astype(str).str.strip()
        undeclared = ~action.isin(self.actions).to_numpy()
        for pos in np.flatnonzero(undeclared & keep):
            errors.append((int(pos), f"{self.treatment}: {action.iloc[pos]!r} not one of {list(self.actions)}"))
        keep &= ~undeclared
        y = pd.to_numeric(frame[self.outcome], errors="coerce")
        bad_y = ~np.isfinite(y.to_numpy(float))
        for pos in np.flatnonzero(bad_y & keep):
            errors.append((int(pos), f"{self.outcome}: not a number: {frame[self.outcome].iloc[pos]!r}"))
        keep &= ~bad_y
        out[self.treatment] = action
        out[self.outcome] = y
        return out[keep].reset_index(drop=True), sorted(errors)

    def actions_without_data(self, frame: pd.DataFrame) -> list[str]:
        """Declared actions the log never took: trained on the rest, never recommended."""
        present = set(frame[self.treatment])
        return [a for a in self.actions if a not in present]


def bad_reason(spec: FeatureSpec, value: Any) -> str:
    if _missing(value):
        return "missing"
    if spec.kind == "cat":
        return f"{value!r} not one of {list(spec.categories)}"
    return f"not a valid {spec.kind} in [{spec.minimum}, {spec.maximum}]: {value!r}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and not value.strip())


def _parse_column(spec: FeatureSpec, values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Typed column (NaN where missing and allowed) and a mask of rejected rows."""
    missing = values.map(_missing).to_numpy(bool)
    if spec.kind == "cat":
        text = values.astype(object).map(lambda v: None if _missing(v) else str(v).strip())
        bad = ~missing & ~text.isin(spec.categories).to_numpy()
    else:
        if spec.kind == "bool":
            lowered = values.astype(object).map(lambda v: str(v).strip().lower())
            mapping = {"1": 1.0, "true": 1.0, "yes": 1.0, "1.0": 1.0,
                       "0": 0.0, "false": 0.0, "no": 0.0, "0.0": 0.0}
            number = lowered.map(mapping).astype(float)
        else:
            number = pd.to_numeric(values, errors="coerce").astype(float)
        arr = number.to_numpy(float)
        bad = ~missing & ~np.isfinite(arr)
        if spec.kind == "int":
            bad |= ~missing & np.isfinite(arr) & (arr != np.round(arr))
        if spec.minimum is not None:
            bad |= ~missing & (arr < spec.minimum)
        if spec.maximum is not None:
            bad |= ~missing & (arr > spec.maximum)
        text = number
    if spec.missing == "reject":
        bad = bad | missing
    return text, bad


class SchemaFeaturizer:
    """Numeric matrix from a validated log: numbers as is, categories one-hot, missing -> indicator.

    Fitted (the medians used to impute "indicator" features) so that scoring tomorrow's rows uses
    today's values; `feature_names` gives the column order for the model card.
    """

    def __init__(self, schema: EventSchema) -> None:
        self.schema = schema
        self.medians_: dict[str, float] = {}

    def fit(self, frame: pd.DataFrame) -> SchemaFeaturizer:
        for f in self.schema.features:
            if f.kind != "cat" and f.missing == "indicator":
                median = pd.to_numeric(frame[f.name], errors="coerce").median()
                self.medians_[f.name] = 0.0 if pd.isna(median) else float(median)
        return self

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for f in self.schema.features:
            if f.kind == "cat":
                names += [f"{f.name}={c}" for c in f.categories]
            else:
                names.append(f.name)
            if f.missing == "indicator":
                names.append(f"{f.name}_missing")
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        cols: list[np.ndarray] = []
        for f in self.schema.features:
            if f.kind == "cat":
                values = frame[f.name].to_numpy(object)
                cols += [(values == c).astype(float) for c in f.categories]
                absent = pd.isna(frame[f.name]).to_numpy()
            else:
                values = frame[f.name].to_numpy(float)
                absent = np.isnan(values)
                cols.append(np.where(absent, self.medians_.get(f.name, 0.0), values))
            if f.missing == "indicator":
                cols.append(absent.astype(float))
        return np.column_stack(cols) if cols else np.zeros((len(frame), 0))
