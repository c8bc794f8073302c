"""Converters from the public RCA data sets to the replay case format (``services/connectors/replay.py``).

* Nezha (MIT, FSE'23): OnlineBoutique (2022-08-22/23) and TrainTicket (2023-01-29/30) pod metrics at
  one-minute steps, fault lists with the injection time, pod and type. One case per fault: a
  ``baseline_minutes`` baseline before the injection and ``fault_minutes`` after it (defaults 10 and 5,
  from the ~8-minute injection cadence in the fault lists, not from accuracy). With ``clean_baseline``
  (default) the baseline is the last ``baseline_minutes`` minutes outside every earlier fault's window:
  faults come every ~8 minutes, often three running into one pod, so the plain 10 minutes before an
  injection held the previous fault. The alert is the entry service's (frontend / ts-gateway-service)
  SLO alert at the injection time. Topology is the data set's ``dependency.csv`` where there is one
  (OnlineBoutique); TrainTicket's call graph comes from the spans recorded on its days (``trace/``,
  ``traces_topology``). OnlineBoutique's ``source_50.csv`` (median latency per call edge as the caller
  sees it) becomes ``trace_stats.csv``. ``Node*`` columns describe the host, whose name the data does not
  give, and are dropped. Labels carry ``split``: the first day of each system is ``train``, the second ``test``.
* PetShop (CC-BY-4.0, CLeaR'24): per issue, five 5-minute rows around the SLI alert
  (``target.json``); ``graph.csv`` is the call graph (row calls column); the regime's ``noissue``
  period (where present) becomes the case's ``baseline.csv`` (its last ``petshop_baseline_rows``).

Fault labels are mapped to the diagnoser's fault types (``NEZHA_FAULTS``, ``petshop_fault``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NEZHA_SYSTEMS = {"2022-08-22": "onlineboutique", "2022-08-23": "onlineboutique",
                 "2023-01-29": "trainticket", "2023-01-30": "trainticket"}
# the first recorded day of each system is where diagnosis settings may be chosen; the second is held out
NEZHA_TRAIN_DAYS = {"2022-08-22", "2023-01-29"}
# the entry service: OnlineBoutique's frontend; TrainTicket's gateway, the root of every recorded trace
# (ts-ui-dashboard, first used here, serves the static UI and is on no trace, so the alert had no place in
# the call graph)
NEZHA_ENTRY = {"onlineboutique": "frontend", "trainticket": "ts-gateway-service"}
NEZHA_FAULTS = {"cpu_contention": "cpu_saturation", "cpu_consumed": "cpu_saturation",
                "network_delay": "network_delay", "return": "bad_deploy", "exception": "bad_deploy"}
PETSHOP_REGIMES = ("low_traffic", "high_traffic", "temporal_traffic1", "temporal_traffic2")


def _service_of_pod(pod: str) -> str:
    """``cartservice-579f59597d-wc2lz`` -> ``cartservice`` (drop the ReplicaSet and pod hashes)."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else pod


def _nezha_time(text: str) -> float:
    """The ``Time`` column (``2022-08-22 03:51:19.607 +0000 UTC ...``); the pod files' ``TimeStamp`` is off."""
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _baseline_keep(at: float, starts: list[float], *, baseline_minutes: int, fault_minutes: int, clean: bool):
    """Which timestamps before ``at`` make the case's baseline: the ``baseline_minutes`` before it or, when
    ``clean``, as many minutes of time outside every earlier fault's window (a baseline is a normal period;
    Nezha injects every ~8 minutes, often into the same pod three times running)."""
    if not clean:
        return lambda t: at - 60 * baseline_minutes <= t < at
    windows = [(s, s + 60 * fault_minutes) for s in starts if s < at]

    def normal(t: float) -> bool:
        return not any(a <= t < b for a, b in windows)

    lo, minutes, t = at, 0, at - 60
    while minutes < baseline_minutes and t > at - 60 * 6 * baseline_minutes:
        if normal(t):
            minutes, lo = minutes + 1, t
        t -= 60
    return lambda t: lo - 30 <= t < at and normal(t)


def nezha_cases(root: Path, out: Path, *, baseline_minutes: int = 10, fault_minutes: int = 5,
                clean_baseline: bool = True, traces_topology: bool = True) -> Iterator[Path]:
    """Write one case directory per labelled Nezha fault; yields the directories."""
    for day, system in NEZHA_SYSTEMS.items():
        day_dir = root / "rca_data" / day
        faults_file = day_dir / f"{day}-fault_list.json"
        if not faults_file.exists():
            continue
        pods: dict[str, tuple[list[str], list[tuple[float, list[str]]]]] = {}
        for path in sorted((day_dir / "metric").glob("*_metric.csv")):
            with path.open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                keep = [i for i, h in enumerate(header) if i > 2 and not h.startswith("Node")]
                rows = [(_nezha_time(r[0]), [r[i] for i in keep]) for r in reader if r]
            pods[_service_of_pod(path.name.removesuffix("_metric.csv"))] = ([header[i] for i in keep], rows)
        edges = []
        dependency = day_dir / "metric" / "dependency.csv"
        if dependency.exists():
            with dependency.open(newline="") as handle:
                edges = sorted({(r["Source"], r["Target"]) for r in csv.DictReader(handle)})
        elif traces_topology:  # the call graph of the same deployment, from the spans recorded on its days
            edges = _span_edges(sorted(p for d, sys_ in NEZHA_SYSTEMS.items() if sys_ == system
                                       for p in (root / "rca_data" / d / "trace").glob("*_trace.csv")))
        edge_latency = _nezha_edges(day_dir / "metric" / "source_50.csv")
        faults = [f for group in json.loads(faults_file.read_text()).values() for f in group]
        # inject_time is on the metrics' clock; TrainTicket's inject_timestamp is 8 hours off it
        starts = sorted(_nezha_time(f["inject_time"]) for f in faults)
        for n, fault in enumerate(sorted(faults, key=lambda f: f["inject_time"])):
            at = _nezha_time(fault["inject_time"])
            # the fault window ends at the next injection when that comes sooner (it is the next case's)
            hi = min([at + 60 * fault_minutes, *(s for s in starts if s > at)])
            keep = _baseline_keep(at, starts, baseline_minutes=baseline_minutes, fault_minutes=fault_minutes,
                                  clean=clean_baseline)
            case = out / "nezha" / system / f"{day}-{n:02d}"
            case.mkdir(parents=True, exist_ok=True)
            header = ["timestamp", "component"]
            metric_names = next(iter(pods.values()))[0]
            rows = [[f"{t:.0f}", service, *values] for service, (names, series) in pods.items()
                    for t, values in series if (keep(t) or at <= t < hi) and names == metric_names]
            _write_csv(case / "metrics.csv", header + metric_names, rows)
            if edges:
                _write_csv(case / "topology.csv", ["source", "target"], [list(e) for e in edges])
            if edge_latency:
                _write_csv(case / "trace_stats.csv", ["timestamp", "caller", "callee", "latency_ms"],
                           [[f"{t:.0f}", a, b, v] for t, a, b, v in edge_latency if keep(t) or at <= t < hi])
            entry = NEZHA_ENTRY[system]
            (case / "case.json").write_text(json.dumps({"alert": {
                "name": "EntrySLOBreach", "component": entry, "service": entry, "severity": "critical",
                "starts_at": at, "summary": f"{entry} latency / success-rate SLO breach"},
                "source": f"nezha {day} fault {n}"}))
            (case / "label.json").write_text(json.dumps({
                "component": _service_of_pod(fault["inject_pod"]), "component_kind": "service",
                "fault": NEZHA_FAULTS.get(fault["inject_type"], fault["inject_type"]), "source_fault": fault["inject_type"],
                "dataset": "nezha", "regime": system, "split": "train" if day in NEZHA_TRAIN_DAYS else "test"}))
            yield case


def _span_edges(paths: list[Path]) -> list[tuple[str, str]]:
    """Caller -> callee service edges from span files (``TraceID,SpanID,ParentID,PodName,...``)."""
    spans: dict[str, str] = {}
    parents: list[tuple[str, str]] = []
    for path in paths:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                service = _service_of_pod(row["PodName"])
                spans[row["SpanID"]] = service
                if row.get("ParentID") and row["ParentID"] != "root":
                    parents.append((row["ParentID"], service))
    return sorted({(spans[p], s) for p, s in parents if p in spans and spans[p] != s})


def _nezha_edges(path: Path) -> list[tuple[float, str, str, float]]:
    """Per-edge median latency seen by the caller (``source_50.csv``: one ``caller_callee`` column per edge)."""
    if not path.exists():
        return []
    out = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        for row in reader:
            if not row:
                continue
            t = _nezha_time(row[0])
            for name, value in zip(header[2:], row[2:], strict=False):
                if value and "_" in name:
                    caller, callee = name.split("_", 1)
                    out.append((t, caller, callee, 1000.0 * float(value)))
    return out


def petshop_fault(command: str) -> str:
    """What the injection command did, as a diagnoser fault type."""
    text = command.lower()
    if "delay" in text or "sleep(" in text:
        return "network_delay"
    if "error" in text or "inject = true" in text:
        return "bad_deploy"
    if "requests" in text:
        return "overload"
    return "unknown"


def _component_kind(name: str) -> str:
    if "DynamoDB" in name or "Database" in name or "RDS" in name:
        return "database"
    if "Lambda" in name:
        return "function"
    if name.endswith("_remote") or name.endswith("_client"):
        return "external"
    return "service"


def _petshop_rows(path: Path) -> tuple[list[tuple[str, str]], list[tuple[float, list[str]]]]:
    """(component, metric) per column and (timestamp, values) per row of a PetShop metrics.csv."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        components, metrics, stats = next(reader)[1:], next(reader)[1:], next(reader)[1:]
        next(reader)  # unix_timestamp header row
        rows = [(float(r[0]), r[1:]) for r in reader if r]
    return [(c, f"{m}_{s}") for c, m, s in zip(components, metrics, stats, strict=True)], rows


def _petshop_wide(columns: list[tuple[str, str]], rows: list[tuple[float, list[str]]]) -> tuple[list[str], list[list[Any]]]:
    names = sorted({m for _, m in columns})
    out = []
    for t, values in rows:
        per: dict[str, dict[str, str]] = {}
        for (component, metric), value in zip(columns, values, strict=True):
            per.setdefault(component, {})[metric] = value
        out.extend([f"{t:.0f}", c, *[m.get(n, "") for n in names]] for c, m in per.items())
    return ["timestamp", "component", *names], out


def petshop_cases(root: Path, out: Path, *, petshop_baseline_rows: int = 36) -> Iterator[Path]:
    """Write one case directory per PetShop issue (train and test); yields the directories."""
    for regime in PETSHOP_REGIMES:
        regime_dir = root / "dataset" / regime
        if not regime_dir.exists():
            continue
        with (regime_dir / "graph.csv").open(newline="") as handle:
            grid = list(csv.reader(handle))
        callees = grid[0][1:]
        edges = [[row[0], callees[j]] for row in grid[1:] for j, v in enumerate(row[1:]) if float(v or 0) > 0]
        normal = regime_dir / "noissue" / "metrics.csv"
        baseline = None
        if normal.exists():
            columns, rows = _petshop_rows(normal)
            baseline = _petshop_wide(columns, rows[-petshop_baseline_rows:])
        for split in ("train", "test"):
            for issue_dir in sorted((regime_dir / split).glob("issue_*"), key=lambda p: int(p.name.split("_")[1])):
                target = json.loads((issue_dir / "target.json").read_text())
                case = out / "petshop" / regime / f"{split}-{issue_dir.name}"
                case.mkdir(parents=True, exist_ok=True)
                header, rows = _petshop_wide(*_petshop_rows(issue_dir / "metrics.csv"))
                _write_csv(case / "metrics.csv", header, rows)
                if baseline:
                    _write_csv(case / "baseline.csv", *baseline)
                _write_csv(case / "topology.csv", ["source", "target"], edges)
                names = sorted({r[1] for r in rows} | {c for e in edges for c in e})
                _write_csv(case / "components.csv", ["component", "kind"], [[n, _component_kind(n)] for n in names])
                sli = target["target"]
                (case / "case.json").write_text(json.dumps({"alert": {
                    "name": f"SLI{sli['metric'].title()}Breach", "component": sli["node"], "service": sli["node"],
                    "severity": "critical", "starts_at": float(sli["timestamp"]),
                    "summary": f"{sli['node']} {sli['metric']} ({sli.get('agg')}) breached"},
                    "source": f"petshop {regime} {split} {issue_dir.name}"}))
                root_cause = target["root_cause"]["node"]
                command = target["metadata"]["reproducibility"]["command"]
                (case / "label.json").write_text(json.dumps({
                    "component": root_cause, "component_kind": _component_kind(root_cause),
                    "fault": petshop_fault(command), "source_fault": command, "dataset": "petshop",
                    "regime": regime, "split": split}))
                yield case
