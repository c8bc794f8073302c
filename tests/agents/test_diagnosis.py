"""Diagnosis on small recorded cases written here: root cause over victims, fault typing, thin telemetry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents import diagnoser, observer
from agents.diagnosis.signals import signal_kind
from agents.protocols import NullTelemetry
from agents.tools import AgentTools
from services.connectors.replay import CaseFormatError, InMemoryStore, ReplayTelemetry, replay_case

T0 = 1_700_000_000.0
ALERT_AT = T0 + 20 * 60


def _series(base: float, after: float, *, wobble: float = 0.02) -> list[tuple[float, float]]:
    """20 one-minute baseline points around ``base``, then 6 fault points around ``after``."""
    points = []
    for i in range(26):
        level = base if i < 20 else after
        points.append((T0 + 60 * i, level * (1 + wobble * ((i * 7919) % 5 - 2) / 2)))
    return points


def _write_case(root: Path, *, metrics: dict[str, dict[str, list[tuple[float, float]]]], edges: list[list[str]],
                alert_component: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "metrics.csv").open("w") as handle:
        handle.write("timestamp,component,metric,value\n")
        for component, series in metrics.items():
            for metric, points in series.items():
                handle.writelines(f"{t:.0f},{component},{metric},{v}\n" for t, v in points)
    if edges:
        (root / "topology.csv").write_text("source,target\n" + "".join(f"{a},{b}\n" for a, b in edges))
    (root / "case.json").write_text(json.dumps({"alert": {"name": "HighLatency", "component": alert_component,
                                                          "service": alert_component, "starts_at": ALERT_AT}}))
    return root


def test_upstream_root_cause_beats_its_victims(tmp_path):
    # frontend -> checkout -> payment; payment saturates its CPU, everyone upstream of it gets slow
    metrics = {
        "frontend": {"http_server_request_duration_seconds": _series(0.2, 0.9)},
        "checkout": {"http_server_request_duration_seconds": _series(0.1, 0.7)},
        "payment": {"http_server_request_duration_seconds": _series(0.05, 0.5),
                    "container_cpu_usage_seconds_total": _series(0.2, 0.95)},
        "catalog": {"http_server_request_duration_seconds": _series(0.05, 0.05)},
    }
    case = _write_case(tmp_path / "case", metrics=metrics, alert_component="frontend",
                       edges=[["frontend", "checkout"], ["checkout", "payment"], ["frontend", "catalog"]])
    ranked = replay_case(case)["hypotheses"]
    assert ranked[0]["component"] == "payment"
    assert ranked[0]["fault"] == ranked[0]["root_cause"] == "cpu_saturation"
    order = [h["component"] for h in ranked]
    assert order.index("payment") < order.index("checkout") and order.index("payment") < order.index("frontend")
    assert "catalog" not in order  # nothing moved there
    for h in ranked:  # the contract the actor relies on
        assert {"root_cause", "fault", "component", "component_kind", "confidence", "evidence"} <= set(h)
        assert 0.0 <= h["confidence"] <= 1.0
        assert all({"kind", "component", "detail"} <= set(e) for e in h["evidence"])


def test_memory_fault_is_typed_from_memory_metrics_alone(tmp_path):
    metrics = {"cart": {"container_memory_working_set_bytes": _series(2.0e8, 7.5e8),
                        "container_cpu_usage_seconds_total": _series(0.3, 0.3)}}
    case = _write_case(tmp_path / "case", metrics=metrics, edges=[], alert_component="cart")
    best = replay_case(case)["hypotheses"][0]
    assert (best["component"], best["fault"]) == ("cart", "memory_leak")
    metric_items = [e for e in best["evidence"] if e["kind"] == "metric"]
    assert metric_items[0]["metric"] == "container_memory_working_set_bytes"
    assert metric_items[0]["before"] < metric_items[0]["after"]


def test_component_without_telemetry_gives_a_low_confidence_hypothesis():
    tools = AgentTools(store=InMemoryStore(), cloud=None, telemetry=NullTelemetry())
    state = {"incident_id": 1, "alert": {"name": "ServiceDown", "service": "billing", "severity": "critical"}}
    state.update(observer.observe(state, tools=tools))
    ranked = diagnoser.diagnose(state, tools=tools)["hypotheses"]
    assert len(ranked) == 1
    assert ranked[0]["component"] == "billing" and ranked[0]["component_kind"] == "service"
    assert ranked[0]["confidence"] <= 0.1
    assert ranked[0]["evidence"][0]["kind"] == "alert" and "no telemetry" in ranked[0]["evidence"][0]["detail"]


def test_malformed_case_directory_names_the_file(tmp_path):
    case = _write_case(tmp_path / "case", metrics={"a": {"cpu": _series(1, 1)}}, edges=[], alert_component="a")
    (case / "metrics.csv").write_text("time,comp,value\n1,a,2\n")
    with pytest.raises(CaseFormatError, match=r"metrics\.csv: missing column"):
        ReplayTelemetry(case)
    (case / "case.json").write_text("{not json")
    with pytest.raises(CaseFormatError, match=r"case\.json: not valid JSON"):
        ReplayTelemetry(case)
    (case / "case.json").unlink()
    with pytest.raises(CaseFormatError, match=r"case\.json: missing"):
        ReplayTelemetry(case)


def test_signal_kinds_follow_exporter_and_otel_names():
    assert signal_kind("container_memory_working_set_bytes") == "memory"
    assert signal_kind("node_cpu_seconds_total") == "cpu"
    assert signal_kind("node_disk_io_time_seconds_total") == "disk"
    assert signal_kind("http.server.request.duration") == "latency"
    assert signal_kind("container_network_receive_bytes_total") == "network"


def test_replay_command_prints_the_ranking_and_names_a_bad_file(tmp_path):
    from typer.testing import CliRunner

    from services.cli import app

    metrics = {"cart": {"container_memory_working_set_bytes": _series(2.0e8, 7.5e8)}}
    case = _write_case(tmp_path / "case", metrics=metrics, edges=[], alert_component="cart")
    result = CliRunner().invoke(app, ["replay", str(case)])
    assert result.exit_code == 0, result.output
    assert "cart" in result.output and "memory_leak" in result.output
    (case / "metrics.csv").write_text("nope\n")
    broken = CliRunner().invoke(app, ["replay", str(case)])
    assert broken.exit_code == 2 and "metrics.csv" in broken.output


def test_fault_typing_reads_load_leaks_and_consequences():
    from agents.diagnosis.faults import fault_scores
    from agents.diagnosis.signals import log_signal

    def m(signal: str, z: float) -> dict:
        return {"kind": "metric", "signal": signal, "z": z}

    # CPU that rose with the requests arriving is load, CPU alone is the component's own
    busy = fault_scores([m("cpu", 8.0), m("latency", 30.0), m("traffic", 30.0)], component_kind="service")
    assert max(busy, key=busy.get) == "overload"
    alone = fault_scores([m("cpu", 8.0), m("latency", 30.0)], component_kind="service")
    assert max(alone, key=alone.get) == "cpu_saturation"
    # a machine short of memory is node memory pressure; its slowness is the consequence
    node = fault_scores([m("memory", 5.0), m("latency", 26.0)], component_kind="node")
    assert max(node, key=node.get) == "node_memory_pressure"
    # with nothing but slowness, latency still names the fault
    slow = fault_scores([m("latency", 26.0)], component_kind="service")
    assert max(slow, key=slow.get) == "network_delay"
    # error logs that say handles ran out name a leak
    assert log_signal("ERROR accept4: too many open files; retrying in 5ms") == "leak"
    assert log_signal("WARN HikariPool-1 - Connection is not available, request timed out after 30000ms") == "leak"
    assert log_signal("ERROR NullPointerException at Handler.process") == "errors"
    leak = fault_scores([m("latency", 40.0), m("errors", 5.0),
                         {"kind": "log", "signal": "leak", "new": True}], component_kind="service")
    assert max(leak, key=leak.get) == "connection_leak"


def test_a_warning_that_a_pool_ran_dry_is_evidence_even_without_an_error_word():
    from agents.diagnosis.evidence import log_evidence

    lines = ["2026-01-01T00:00:10Z api[1]: INFO GET /items 200 12ms",
             "2026-01-01T00:10:10Z api[1]: WARN db pool: timed out after 30000ms waiting for a connection (12 in use)",
             "2026-01-01T00:10:20Z api[1]: INFO GET /items 200 15ms"]
    found = log_evidence("api", lines, split_at=1767225900.0)
    assert [(e["signal"], e["new"]) for e in found] == [("leak", True)]


def test_first_failures_of_a_success_ratio_that_never_failed_are_evidence():
    """A success ratio pinned at 100 % for the whole baseline losing 2 requests of ~140 in one window is new
    failure; the same dip on a ratio that wobbled in the baseline is its usual noise."""
    from agents.diagnosis.evidence import metric_evidence

    steps = [T0 + 60 * i for i in range(23)]
    pinned = [(t, 100.0) for t in steps[:20]] + list(zip(steps[20:], [98.6, 100.0, 100.0], strict=True))
    item = metric_evidence("petlist", "availability_Average", pinned, split_at=steps[20])
    assert item is not None and item["signal"] == "errors" and item["after"] == 98.6
    wobbling = [(t, 100.0 if i % 3 else 98.5) for i, t in enumerate(steps[:20])] + pinned[20:]
    assert metric_evidence("petlist", "availability_Average", wobbling, split_at=steps[20]) is None
