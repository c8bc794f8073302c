"""The event table of unhealthy-node episodes: schema, validation on load, append, featurization.

One row = one mitigation episode: the node's signals and context when it was found unhealthy
(features), the action taken (treatment) and what happened next (outcomes). The table is the only
training input of the causal model, and it is written by a running system (the actor appends a
row per mitigation), so a bad row must be *reported* with its line and reason instead of crashing
training or being dropped silently: `load_events` returns the valid rows plus a list of errors.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Mitigation actions (treatment values). Order matters only for display; the baseline of the
# effect model is LEGACY_DEFAULT_ACTION (effects are reported relative to it).
ACTIONS: tuple[str, ...] = ("wait", "reboot", "redeploy", "reimage", "repair")
LEGACY_DEFAULT_ACTION = "reboot"
# Actions that take the node out of service (the capacity guard counts them).
OUT_OF_SERVICE_ACTIONS: frozenset[str] = frozenset({"redeploy", "reimage", "repair"})

HEARTBEAT_PATTERNS: tuple[str, ...] = ("none", "intermittent", "sustained")
KNOWN_SKUS: tuple[str, ...] = ("gen5", "gen6", "gen7", "gen8")

ID_COLUMNS: tuple[str, ...] = ("event_id", "node_id", "cluster", "timestamp")
SCORING_OPTIONAL = frozenset({"event_id", "timestamp"})  # a node being scored has no event yet
# name -> (kind, min, max); kind in int/float/bool/cat
FEATURES: dict[str, tuple[str, float | None, float | None]] = {
    "hw_correctable_errors": ("int", 0, None),
    "hw_uncorrectable_errors": ("int", 0, None),
    "hw_fault_definitive": ("bool", None, None),
    "heartbeat_loss_count": ("int", 0, None),
    "heartbeat_pattern": ("cat", None, None),
    "cpu_util": ("float", 0.0, 1.0),
    "mem_util": ("float", 0.0, 1.0),
    "vm_count": ("int", 0, 1000),
    "node_age_days": ("float", 0.0, 36500.0),
    "sku": ("str", None, None),
    "recent_incidents_30d": ("int", 0, None),
    "hour_of_day": ("int", 0, 23),
}
# Features a platform may not be able to observe (inventory and hardware counters differ between
# fleets): such a value may be *missing* (None/NaN/empty), never filled with a made-up constant.
# The model imputes it as its model card declares (`Imputation`: the training median or mode plus
# a missing-indicator column when training rows lacked it) and the policy treats a node whose
# decision depends on an imputed value as outside the model's support (fallback). The other
# features are computed by the platform itself (heartbeats, its own incident history, the clock)
# and stay required.
MAY_BE_MISSING: frozenset[str] = frozenset({
    "hw_correctable_errors", "hw_uncorrectable_errors", "cpu_util", "mem_util", "vm_count",
    "node_age_days", "sku"})
TREATMENT = "action"
OUTCOME = "vm_downtime_min"
OUTCOMES: dict[str, tuple[str, float | None, float | None]] = {
    "vm_downtime_min": ("float", 0.0, None),
    "vm_interrupted": ("bool", None, None),
    "capacity_out_hours": ("float", 0.0, None),
}
_ACTION_INDEX = {a: i for i, a in enumerate(ACTIONS)}


def action_index(actions: Any) -> np.ndarray:
    """Column index in ACTIONS of each action name (raises KeyError on an unknown action)."""
    return np.fromiter((_ACTION_INDEX[str(a)] for a in actions), dtype=np.int64)


COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *FEATURES, TREATMENT, *OUTCOMES)
FEATURE_COLUMNS: tuple[str, ...] = tuple(FEATURES)


@dataclass(frozen=True)
class RowError:
    """A rejected input row: where it was (1-based line in the file) and why."""

    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass
class LoadResult:
    """Valid rows as a typed DataFrame, plus every rejected row with its reason."""

    frame: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)

    @property
    def n_valid(self) -> int:
        return len(self.frame)

    def summary(self) -> dict[str, Any]:
        return {"valid": self.n_valid, "rejected": len(self.errors),
                "errors": [e.to_dict() for e in self.errors[:50]]}


class ValidationError(ValueError):
    """Raised by `append_event` (and strict loads) when a row does not fit the schema."""


class EventFileError(ValueError):
    """The event file as a whole cannot be used: missing, empty, undecodable, or lacking columns.

    Its message is one line naming the file and the problem, so a CLI can print it as is (no
    traceback): an operator fixing a spreadsheet export needs the column or the line, not a stack.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _parse(name: str, kind: str, lo: float | None, hi: float | None, value: Any) -> Any:
    """Parse one cell; raise ValueError with a human reason."""
    if _is_missing(value):
        raise ValueError(f"{name}: missing")
    if kind == "bool":
        if isinstance(value, bool | np.bool_):
            return bool(value)
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "1.0"}:
            return True
        if text in {"0", "false", "no", "0.0"}:
            return False
        raise ValueError(f"{name}: not a boolean: {value!r}")
    if kind in {"int", "float"}:
        if isinstance(value, bool):
            raise ValueError(f"{name}: boolean where a number is expected")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: not a number: {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{name}: not finite: {value!r}")
        if kind == "int":
            if number != int(number):
                raise ValueError(f"{name}: not an integer: {value!r}")
            number = int(number)
        if lo is not None and number < lo:
            raise ValueError(f"{name}: {number} below minimum {lo}")
        if hi is not None and number > hi:
            raise ValueError(f"{name}: {number} above maximum {hi}")
        return number
    text = str(value).strip()
    if kind == "cat" and name == "heartbeat_pattern" and text not in HEARTBEAT_PATTERNS:
        raise ValueError(f"{name}: {text!r} not one of {list(HEARTBEAT_PATTERNS)}")
    return text


def validate_row(row: Mapping[str, Any], *, require_outcomes: bool = True) -> dict[str, Any]:
    """Return the typed row or raise ValueError naming the first bad field.

    `require_outcomes=False` validates a node to be scored (features only, no action/outcome).
    """
    clean: dict[str, Any] = {}
    for name in ID_COLUMNS:
        value = row.get(name)
        if _is_missing(value):
            if not require_outcomes and name in SCORING_OPTIONAL:
                clean[name] = ""
                continue
            raise ValueError(f"{name}: missing")
        clean[name] = str(value).strip()
    for name, (kind, lo, hi) in FEATURES.items():
        value = row.get(name)
        clean[name] = None if name in MAY_BE_MISSING and _is_missing(value) else _parse(name, kind, lo, hi, value)
    if not require_outcomes:
        return clean
    action = row.get(TREATMENT)
    if _is_missing(action) or str(action).strip() not in ACTIONS:
        raise ValueError(f"{TREATMENT}: {action!r} not one of {list(ACTIONS)}")
    clean[TREATMENT] = str(action).strip()
    for name, (kind, lo, hi) in OUTCOMES.items():
        clean[name] = _parse(name, kind, lo, hi, row.get(name))
    return clean


def _typed_frame(rows: list[dict[str, Any]], *, with_outcomes: bool = True) -> pd.DataFrame:
    columns = list(COLUMNS) if with_outcomes else [*ID_COLUMNS, *FEATURES]
    frame = pd.DataFrame(rows, columns=columns)
    for name, (kind, _, _) in {**FEATURES, **(OUTCOMES if with_outcomes else {})}.items():
        if name in MAY_BE_MISSING and frame[name].isna().any():
            # missing values stay NaN (floats) / None (text) for the model's declared imputation
            if kind in {"int", "float"}:
                frame[name] = frame[name].astype("float64")
            continue
        if kind == "int":
            frame[name] = frame[name].astype("int64")
        elif kind == "float":
            frame[name] = frame[name].astype("float64")
        elif kind == "bool":
            frame[name] = frame[name].astype(bool)
    return frame.reset_index(drop=True)


def validate_records(records: Iterable[tuple[int, Mapping[str, Any]]], *,
                     require_outcomes: bool = True) -> LoadResult:
    """Validate (line, row) pairs; keep the good ones, report the bad ones (never raise)."""
    good: list[dict[str, Any]] = []
    errors: list[RowError] = []
    for line, row in records:
        try:
            good.append(validate_row(row, require_outcomes=require_outcomes))
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
    return LoadResult(_typed_frame(good, with_outcomes=require_outcomes), errors)


def validate_frame(frame: pd.DataFrame, *, require_outcomes: bool = True) -> LoadResult:
    """Validate an in-memory table; `line` in errors is the 0-based row position."""
    records = frame.to_dict(orient="records")
    return validate_records(enumerate(records), require_outcomes=require_outcomes)


def _csv_records(path: Path, text: str, errors: list[RowError]) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise EventFileError(path, "file is empty (no header line)")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise EventFileError(path, f"header (line 1) lacks columns {missing}")
    return _csv_rows(reader, header, errors)


def _csv_rows(reader: Any, header: list[str], errors: list[RowError]
              ) -> Iterable[tuple[int, dict[str, Any]]]:
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(line, f"expected {len(header)} fields, got {len(cells)}"))
            continue
        yield line, dict(zip(header, cells, strict=True))


def _jsonl_records(path: Path, text: str, errors: list[RowError]) -> Iterable[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for line, chunk in enumerate(text.splitlines(), start=1):
        if not chunk.strip():
            continue
        try:
            row = json.loads(chunk)
        except json.JSONDecodeError as exc:
            errors.append(RowError(line, f"invalid JSON: {exc.msg}"))
            continue
        if not isinstance(row, dict):
            errors.append(RowError(line, "JSON line is not an object"))
            continue
        seen.update(str(k) for k in row)
        records.append((line, row))
    if records:
        # a column no object carries is a file problem (a wrong export), not one bad row per line
        missing = [c for c in COLUMNS if c not in seen]
        if missing:
            raise EventFileError(path, f"no JSON object has the fields {missing}")
    return records


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in {".jsonl", ".ndjson", ".json"}


def read_event_text(path: str | os.PathLike[str]) -> str:
    """The file's text, or an EventFileError saying plainly what is wrong with the file.

    A UTF-8 byte-order mark (spreadsheets write one) is accepted; a byte that is not UTF-8 is
    reported with its line and byte offset instead of aborting with a codec traceback.
    """
    path = Path(path)
    if not path.exists():
        raise EventFileError(path, "file not found")
    if path.is_dir():
        raise EventFileError(path, "is a directory, not an event file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EventFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise EventFileError(path, f"line {line}: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                                   f"is not UTF-8 (save the file as UTF-8)") from None
    if not text.strip():
        raise EventFileError(path, "file is empty")
    return text


def load_events(path: str | os.PathLike[str]) -> LoadResult:
    """Load a CSV or JSON-lines event table, validating each row against the schema.

    Bad rows are returned in `errors` with their 1-based file line; the run goes on with the rest.
    A file that cannot be used at all (missing, empty, not UTF-8, columns missing) raises
    EventFileError with a one-line message.
    """
    path = Path(path)
    text = read_event_text(path)
    errors: list[RowError] = []
    reader = _jsonl_records if _is_jsonl(path) else _csv_records
    result = validate_records(reader(path, text, errors))
    result.errors = sorted(errors + result.errors, key=lambda e: e.line)
    return result


def append_event(path: str | os.PathLike[str], row: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one episode and append it to the table (CSV or JSONL by extension).

    Used by the actor after every mitigation so the model keeps learning. The write holds an
    exclusive flock so concurrent workers never interleave half rows. Raises ValidationError.
    """
    try:
        clean = validate_row(row)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0, os.SEEK_END)
            if _is_jsonl(path):
                handle.write(json.dumps(clean) + "\n")
            else:
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                if handle.tell() == 0:
                    writer.writerow(COLUMNS)
                writer.writerow([clean[c] for c in COLUMNS])
                handle.write(buffer.getvalue())
            handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return clean


def write_events(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a whole table (CSV or JSONL by extension); used by the simulator and tests."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _is_jsonl(path):
        frame.loc[:, list(COLUMNS)].to_json(path, orient="records", lines=True)
    else:
        frame.loc[:, list(COLUMNS)].to_csv(path, index=False)


# ----------------------------------------------------------------------------------------------
# missing values: what the model card declares and the model applies before featurizing


def missing_mask(frame: pd.DataFrame) -> pd.DataFrame:
    """True where a feature that may be missing is missing (columns in MAY_BE_MISSING order)."""
    names = [n for n in FEATURES if n in MAY_BE_MISSING]
    return pd.DataFrame({n: frame[n].map(_is_missing).astype(bool) if n in frame else True for n in names},
                        index=frame.index)


@dataclass
class Imputation:
    """How a missing feature is filled, learned from the training rows and stored with the model.

    Numbers get the training median, the SKU the training mode. `indicators` lists the features
    that were missing in some training rows: the model gets a 0/1 "<name>_missing" column for
    each, so it can learn that absence itself matters. `spans` are the plausible values of each
    feature (numbers: training 10th and 90th percentiles; SKU: the common training values) that
    the policy tries in place of an imputed value: a decision that changes across them depends
    on something the platform did not observe. A feature never observed in training gets no span
    (the model cannot depend on it) and is imputed with 0 / "" only to keep the matrix numeric.
    """

    values: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, list[Any]] = field(default_factory=dict)
    indicators: list[str] = field(default_factory=list)
    missing_in_training: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Imputation:
        out = cls()
        mask = missing_mask(frame)
        for name in mask.columns:
            absent = mask[name].to_numpy(bool)
            out.missing_in_training[name] = int(absent.sum())
            if absent.any():
                out.indicators.append(name)
            seen = frame.loc[~absent, name]
            if seen.empty:
                out.values[name] = "" if FEATURES[name][0] == "str" else 0.0
                out.spans[name] = []
            elif FEATURES[name][0] == "str":
                counts = seen.astype(str).value_counts()
                out.values[name] = str(counts.index[0])
                common = counts[counts >= 0.05 * len(seen)].index[:4]
                out.spans[name] = [str(v) for v in common if v != out.values[name]]
            else:
                numbers = seen.to_numpy(float)
                out.values[name] = float(np.median(numbers))
                lo, hi = np.quantile(numbers, [0.1, 0.9])
                out.spans[name] = sorted({float(lo), float(hi)} - {out.values[name]})
        return out

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy with every missing value filled (the frame `featurize` needs)."""
        mask = missing_mask(frame)
        if not mask.to_numpy().any():
            return frame
        filled = frame.copy()
        for name in mask.columns:
            absent = mask[name].to_numpy(bool)
            if absent.any():
                column = filled[name].astype(object if FEATURES[name][0] == "str" else "float64")
                filled[name] = column.where(~absent, self.values.get(name, "" if FEATURES[name][0] == "str" else 0.0))
        return filled

    def to_dict(self) -> dict[str, Any]:
        """The model card's declaration of missing-value handling."""
        return {"method": "training median (numbers) / mode (sku), plus a missing-indicator column "
                          "for features missing in training rows; decisions that change across the "
                          "feature's training 10th-90th percentiles (or common SKUs) fall back",
                "may_be_missing": sorted(MAY_BE_MISSING), "impute_with": dict(self.values),
                "plausible_values": {k: list(v) for k, v in self.spans.items()},
                "indicators": list(self.indicators), "missing_in_training": dict(self.missing_in_training)}


# ----------------------------------------------------------------------------------------------
# featurization: a fixed, stateless mapping so a model trained today scores tomorrow's rows the
# same way (no fitted encoders to version separately).

FEATURE_NAMES: tuple[str, ...] = (
    "hw_correctable_log", "hw_uncorrectable", "hw_fault_definitive", "heartbeat_loss_count",
    *(f"hb_{p}" for p in HEARTBEAT_PATTERNS), "cpu_util", "mem_util", "vm_count",
    "node_age_years", *(f"sku_{s}" for s in (*KNOWN_SKUS, "other")),
    "recent_incidents_30d", "hour_sin", "hour_cos",
)


def featurize(frame: pd.DataFrame) -> np.ndarray:
    """Map validated rows to the numeric matrix X used by every model (columns FEATURE_NAMES)."""
    n = len(frame)
    cols: list[np.ndarray] = [
        np.log1p(frame["hw_correctable_errors"].to_numpy(float)),
        np.minimum(frame["hw_uncorrectable_errors"].to_numpy(float), 10.0),
        frame["hw_fault_definitive"].to_numpy(float),
        frame["heartbeat_loss_count"].to_numpy(float),
    ]
    pattern = frame["heartbeat_pattern"].to_numpy()
    cols += [(pattern == p).astype(float) for p in HEARTBEAT_PATTERNS]
    cols += [frame["cpu_util"].to_numpy(float), frame["mem_util"].to_numpy(float),
             frame["vm_count"].to_numpy(float), frame["node_age_days"].to_numpy(float) / 365.0]
    sku = frame["sku"].to_numpy()
    known = np.isin(sku, KNOWN_SKUS)
    cols += [(sku == s).astype(float) for s in KNOWN_SKUS] + [(~known).astype(float)]
    hour = frame["hour_of_day"].to_numpy(float)
    cols += [frame["recent_incidents_30d"].to_numpy(float),
             np.sin(2 * np.pi * hour / 24.0), np.cos(2 * np.pi * hour / 24.0)]
    matrix = np.column_stack(cols) if n else np.zeros((0, len(FEATURE_NAMES)))
    return matrix.astype(np.float64)
