"""Replay connector: a recorded case directory served through the Telemetry protocol.

WHY: users replay their own past incidents (and the benchmark replays public data sets) through the
very observer/diagnoser code production runs, as a regression suite. The format is documented in
README ("Replaying a recorded case"); in short, a directory with:

* ``case.json`` (required): ``{"alert": {"name", "component" | "service" | "node", "starts_at", ...}}``
* ``metrics.csv`` (required): long ``timestamp,component,metric,value`` or wide
  ``timestamp,component,<metric>,<metric>,...``; timestamps in epoch seconds or ISO 8601
* ``baseline.csv`` (optional): a normal period in the same format, recorded at any time; it is
  replayed just before the case's first point, keeping its spacing
* ``logs.csv`` (optional): ``timestamp,component,message``
* ``spans.csv`` (optional): ``timestamp,caller,callee,duration_ms[,error]``
* ``trace_stats.csv`` (optional): per-edge aggregates ``timestamp,caller,callee,latency_ms[,error_rate]``
* ``topology.csv`` (optional): ``source,target[,relation]`` with relation ``calls`` (default) or
  ``runs_on`` (service -> node); or ``topology.json`` ``{"edges", "placement", "components"}``
* ``components.csv`` (optional): ``component,kind`` (service, node, database, ...)
* ``changes.csv`` (optional): ``timestamp,component,kind,detail``
* ``label.json`` (optional): ``{"component", "fault", "component_kind"}`` - the known answer

A malformed file raises ``CaseFormatError`` naming the file and the problem.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agents.diagnosis.evidence import iso, to_epoch

if TYPE_CHECKING:
    from agents.state import IncidentState

LONG_COLUMNS = {"timestamp", "component", "metric", "value"}


class CaseFormatError(ValueError):
    """A case directory that cannot be read; the message names the file."""


def _rows(path: Path, *, required: set[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = set(reader.fieldnames or [])
            missing = required - header
            if missing:
                raise CaseFormatError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                                      f"(header: {', '.join(reader.fieldnames or []) or 'empty'})")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CaseFormatError(f"{path}: cannot read ({exc})") from exc


def _time(path: Path, line: int, value: str) -> float:
    ts = to_epoch(value)
    if ts is None:
        raise CaseFormatError(f"{path}: line {line}: timestamp {value!r} is neither epoch seconds nor ISO 8601")
    return ts


def _number(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def read_metrics(path: Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``{component: {metric: [(t, v), ...]}}`` from a long or wide metrics CSV."""
    rows = _rows(path, required={"timestamp", "component"})
    if not rows:
        raise CaseFormatError(f"{path}: no rows")
    out: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    long = LONG_COLUMNS <= set(rows[0])
    for i, row in enumerate(rows, start=2):
        ts = _time(path, i, row["timestamp"])
        component = row["component"]
        if long:
            value = _number(row["value"])
            if value is not None:
                out[component][row["metric"]].append((ts, value))
            continue
        for name, raw in row.items():
            if name in ("timestamp", "component") or name is None:
                continue
            value = _number(raw)
            if value is not None:
                out[component][name].append((ts, value))
    return {c: {m: sorted(p) for m, p in series.items()} for c, series in out.items()}


class ReplayTelemetry:
    """``agents.protocols.Telemetry`` over a case directory (every kind, including the optional ones)."""

    def __init__(self, case_dir: str | Path) -> None:
        self.dir = Path(case_dir)
        if not self.dir.is_dir():
            raise CaseFormatError(f"{self.dir}: not a directory")
        case_file = self.dir / "case.json"
        self.case = self._json(case_file, required=True)
        if not isinstance(self.case.get("alert"), dict):
            raise CaseFormatError(f"{case_file}: needs an \"alert\" object")
        metrics_file = self.dir / "metrics.csv"
        if not metrics_file.exists():
            raise CaseFormatError(f"{metrics_file}: missing (every case needs metrics)")
        self.series = read_metrics(metrics_file)
        baseline_file = self.dir / "baseline.csv"
        if baseline_file.exists():
            self._prepend_baseline(read_metrics(baseline_file))
        self.label = self._json(self.dir / "label.json", required=False)
        self._logs = self._read_logs()
        self._spans = self._read_spans()
        self._edge_stats = self._read_edge_stats()
        self._topology = self._read_topology()
        self._changes = self._read_changes()

    # ------------------------------------------------------------------ reading the directory
    @staticmethod
    def _json(path: Path, *, required: bool) -> dict[str, Any]:
        if not path.exists():
            if required:
                raise CaseFormatError(f"{path}: missing")
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CaseFormatError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise CaseFormatError(f"{path}: must hold a JSON object")
        return data

    def _prepend_baseline(self, baseline: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
        """Shift the normal period so it ends one step before the case's first point."""
        first = min((p[0][0] for s in self.series.values() for p in s.values() if p), default=0.0)
        stamps = sorted({t for s in baseline.values() for p in s.values() for t, _ in p})
        if not stamps:
            return
        step = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1) or 60.0
        shift = first - step - stamps[-1]
        for component, series in baseline.items():
            for metric, points in series.items():
                mine = self.series.setdefault(component, {}).setdefault(metric, [])
                mine[:0] = [(t + shift, v) for t, v in points]

    def _read_logs(self) -> dict[str, list[tuple[float, str]]]:
        path = self.dir / "logs.csv"
        out: dict[str, list[tuple[float, str]]] = defaultdict(list)
        if path.exists():
            for i, row in enumerate(_rows(path, required={"timestamp", "component", "message"}), start=2):
                out[row["component"]].append((_time(path, i, row["timestamp"]), row["message"]))
        return out

    def _read_spans(self) -> list[tuple[float, str, str, float, bool]]:
        path = self.dir / "spans.csv"
        if not path.exists():
            return []
        spans = []
        for i, row in enumerate(_rows(path, required={"timestamp", "caller", "callee", "duration_ms"}), start=2):
            duration = _number(row["duration_ms"])
            if duration is None:
                raise CaseFormatError(f"{path}: line {i}: duration_ms {row['duration_ms']!r} is not a number")
            error = str(row.get("error") or "").strip().lower() in {"1", "true", "yes", "error"}
            spans.append((_time(path, i, row["timestamp"]), row["caller"], row["callee"], duration, error))
        return spans

    def _read_edge_stats(self) -> dict[tuple[str, str], dict[str, list[tuple[float, float]]]]:
        path = self.dir / "trace_stats.csv"
        out: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = {}
        if not path.exists():
            return out
        for i, row in enumerate(_rows(path, required={"timestamp", "caller", "callee", "latency_ms"}), start=2):
            stats = out.setdefault((row["caller"], row["callee"]), {"latency": [], "errors": []})
            ts = _time(path, i, row["timestamp"])
            latency, errors = _number(row["latency_ms"]), _number(row.get("error_rate"))
            if latency is not None:
                stats["latency"].append((ts, latency))
            if errors is not None:
                stats["errors"].append((ts, errors))
        return out

    def _read_topology(self) -> dict[str, Any]:
        edges: list[list[str]] = []
        placement: dict[str, str] = {}
        components: dict[str, str] = {}
        as_json = self.dir / "topology.json"
        if as_json.exists():
            data = self._json(as_json, required=True)
            edges = [list(map(str, e)) for e in data.get("edges", [])]
            placement = {str(k): str(v) for k, v in (data.get("placement") or {}).items()}
            components = {str(k): str(v) for k, v in (data.get("components") or {}).items()}
        as_csv = self.dir / "topology.csv"
        if as_csv.exists():
            for row in _rows(as_csv, required={"source", "target"}):
                if (row.get("relation") or "calls").strip() == "runs_on":
                    placement[row["source"]] = row["target"]
                else:
                    edges.append([row["source"], row["target"]])
        kinds = self.dir / "components.csv"
        if kinds.exists():
            components.update({r["component"]: r["kind"] for r in _rows(kinds, required={"component", "kind"})})
        for name in self.series:
            components.setdefault(name, "node" if name in placement.values() else "service")
        for caller, callee in [(c, d) for _, c, d, _, _ in self._spans] + list(self._edge_stats):
            if [caller, callee] not in edges:
                edges.append([caller, callee])
        return {"edges": edges, "placement": placement, "components": components}

    def _read_changes(self) -> list[dict[str, Any]]:
        path = self.dir / "changes.csv"
        if not path.exists():
            return []
        return [{"at": _time(path, i, r["timestamp"]), "component": r["component"], "kind": r.get("kind") or "change",
                 "detail": r.get("detail") or ""}
                for i, r in enumerate(_rows(path, required={"timestamp", "component"}), start=2)]

    # ------------------------------------------------------------------ the Telemetry protocol
    @property
    def alert(self) -> dict[str, Any]:
        return dict(self.case["alert"])

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        """The recorded series of one component (the case is already the window, ``minutes`` is ignored)."""
        return {m: list(p) for m, p in self.series.get(target, {}).items()}

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        return [f"{iso(t).replace(' ', 'T')}Z {message}" for t, message in sorted(self._logs.get(target, []))]

    def health(self, target: str) -> bool | None:
        return None

    def topology(self) -> dict[str, Any]:
        return self._topology

    def traces(self, target: str, *, minutes: int = 15) -> list[dict[str, Any]]:
        """Per-edge latency and error share for edges touching ``target``: recorded aggregates as they are,
        spans bucketed per minute."""
        buckets: dict[tuple[str, str], dict[float, list[tuple[float, bool]]]] = defaultdict(lambda: defaultdict(list))
        for ts, caller, callee, duration, error in self._spans:
            if target in (caller, callee):
                buckets[(caller, callee)][ts - ts % 60].append((duration, error))
        out = [{"caller": a, "callee": b, "latency": sorted(s["latency"]), "errors": sorted(s["errors"])}
               for (a, b), s in self._edge_stats.items() if target in (a, b)]
        for (caller, callee), per_minute in buckets.items():
            stamps = sorted(per_minute)
            out.append({"caller": caller, "callee": callee,
                        "latency": [(t, sum(d for d, _ in per_minute[t]) / len(per_minute[t])) for t in stamps],
                        "errors": [(t, sum(e for _, e in per_minute[t]) / len(per_minute[t])) for t in stamps]})
        return out

    def changes(self, *, minutes: int = 60) -> list[dict[str, Any]]:
        return list(self._changes)


class InMemoryStore:
    """``agents.protocols.IncidentStore`` in memory, for replays: the diagnosis, not SQL, is under test."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.incident: dict[str, Any] = {}

    def add_event(self, incident_id: int, *, kind: str, actor: str, message: str,
                  data: dict[str, Any] | None = None, dedup_key: str | None = None) -> None:
        self.events.append({"kind": kind, "message": message, "data": data or {}})

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        self.incident.update(fields)

    def save_hypotheses(self, incident_id: int, hypotheses: list[dict[str, Any]]) -> None:
        self.incident["hypotheses"] = hypotheses

    def request_approval(self, incident_id: int, *, action: str, target: str, risk: str, reason: str,
                         round: int = 0) -> int:
        return 0

    def begin_action(self, key: str, **_: Any) -> dict[str, Any] | None:
        return None

    def finish_action(self, key: str, *, status: str, result: dict[str, Any]) -> None:
        return None

    def actions_in_last_hour(self) -> int:
        return 0

    def source_status(self, incident_id: int) -> dict[str, Any]:
        return {}  # a replay has no source to ask; the actor reads {} as "cannot tell" (and replays never act)


class _NoCloud:
    def execute(self, action: str, target: str, *, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("replay never acts")

    def describe(self, target: str) -> dict[str, Any]:
        return {}


def replay_case(case_dir: str | Path, *, recall: Any = None) -> dict[str, Any]:
    """Run the real observer and diagnoser nodes on a case; returns hypotheses, the case and the label."""
    from agents import diagnoser, observer
    from agents.tools import AgentTools

    telemetry = ReplayTelemetry(case_dir)
    tools = AgentTools(store=InMemoryStore(), cloud=_NoCloud(), telemetry=telemetry, recall=recall)
    state: dict[str, Any] = {"incident_id": 0, "alert": telemetry.alert}
    state.update(observer.observe(cast("IncidentState", state), tools=tools))
    state.update(diagnoser.diagnose(cast("IncidentState", state), tools=tools))
    return {"hypotheses": state["hypotheses"], "case": state["signals"]["case"], "label": telemetry.label,
            "telemetry": telemetry}
