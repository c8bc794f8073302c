"""Alerts have the shape of real Alertmanager webhooks and are really POSTed over HTTP."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest

from sim.alerts import ZERO_TIME, AlertEmitter, EmitError, fingerprint, to_alertmanager
from sim.faults import FaultInjector
from sim.fleet import Fleet
from sim.telemetry import Telemetry

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sim"
REAL = [
    json.loads((FIXTURES / name).read_text())
    for name in ("prom_post_request.json", "prom_post_request_2_alerts.json")
]


def _parse_time(value: str) -> datetime:
    """RFC 3339 with up to nanoseconds, as Go writes it (Python keeps microseconds)."""
    value = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(value)


def test_fingerprint_matches_prometheus_test_vectors() -> None:
    # expected values from prometheus/common model/metric_test.go (LabelSet.Fingerprint)
    assert int(fingerprint({}), 16) == 14695981039346656037
    assert int(
        fingerprint({"first_name": "electro", "occupation": "robot", "manufacturer": "westinghouse"}), 16
    ) == (5911716720268894962)
    assert int(fingerprint({"x": "y"}), 16) == 8241431561484471700
    assert int(fingerprint({"a": "bb", "b": "c"}), 16) == 3016285359649981711


@pytest.mark.parametrize("kind", ["disk_failure", "bad_deploy"])
def test_payload_has_the_shape_of_real_alertmanager_webhooks(fleet: Fleet, kind: str) -> None:
    fault = FaultInjector(fleet, seed=1).inject(kind, at=time.time() - 30)
    payload = to_alertmanager(fault, fleet=fleet, telemetry=Telemetry(fleet))

    for real in REAL:
        assert set(real) <= set(payload), set(real) - set(payload)
        for key, value in real.items():
            assert type(payload[key]) is type(value), key
        real_alert_keys = set().union(*(a.keys() for a in real["alerts"]))
        for alert in payload["alerts"]:
            assert real_alert_keys <= set(alert)
    for alert in payload["alerts"]:  # what Alertmanager guarantees: common labels are in every alert
        assert payload["commonLabels"].items() <= alert["labels"].items()

    assert payload["version"] == "4" and payload["status"] == "firing"
    assert re.fullmatch(r'\{\}:\{(\w+="[^"]*"(, )?)+\}', payload["groupKey"])
    assert payload["groupLabels"]["alertname"] == payload["commonLabels"]["alertname"]
    for alert in payload["alerts"]:
        labels = alert["labels"]
        assert {"alertname", "severity", "instance", "service", "node", "cluster"} <= set(labels)
        assert labels["cluster"] == fleet.cluster
        assert fleet.node(labels["node"]).instance_id == labels["instance_id"]
        assert kind not in json.dumps(labels)  # symptoms only, the kind is ground truth
        assert {"summary", "description"} <= set(alert["annotations"])
        assert alert["fingerprint"] == fingerprint(labels)
        assert alert["endsAt"] == ZERO_TIME
        assert abs(_parse_time(alert["startsAt"]).timestamp() - fault.started_at) < 1e-3
    if kind == "bad_deploy":  # one alert per replica, grouped in one notification
        assert sorted(a["labels"]["node"] for a in payload["alerts"]) == sorted(fleet.services[fault.target])
        assert payload["groupLabels"]["service"] == fault.target
    else:
        assert [a["labels"]["node"] for a in payload["alerts"]] == [fault.target]
        assert "disk_io_errors=" in payload["alerts"][0]["annotations"]["description"]


def test_resolved_payload_after_the_fix(fleet: Fleet) -> None:
    fault = FaultInjector(fleet, seed=1).inject("kernel_hang", at=time.time() - 30)
    firing = to_alertmanager(fault, fleet=fleet)
    fleet.apply_mitigation(fault.target, "reboot")
    resolved = to_alertmanager(fault, fleet=fleet)
    assert resolved["status"] == "resolved"
    assert all(a["status"] == "resolved" for a in resolved["alerts"])
    alert = resolved["alerts"][0]
    assert _parse_time(alert["endsAt"]) > _parse_time(alert["startsAt"])
    assert resolved["groupKey"] == firing["groupKey"]
    assert alert["fingerprint"] == firing["alerts"][0]["fingerprint"]  # same alert, same identity


def test_emitter_posts_to_a_real_http_server(fleet: Fleet, receiver) -> None:
    fault = FaultInjector(fleet, seed=1).inject("cpu_saturation")
    payload = to_alertmanager(fault, fleet=fleet)
    with AlertEmitter(receiver.url) as emitter:
        response = emitter.emit(payload)
    assert response.status_code == 202
    assert receiver.payloads() == [payload]
    request = receiver.requests[0]
    assert request["path"] == "/api/v1/ingest/alertmanager"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"].startswith("Alertmanager/")


def test_emitter_retries_server_errors_then_succeeds(fleet: Fleet, receiver) -> None:
    receiver.script = [503, 500, 202]
    fault = FaultInjector(fleet, seed=1).inject("memory_leak")
    emitter = AlertEmitter(receiver.url, retries=3, backoff_s=0.01)
    assert emitter.emit(to_alertmanager(fault, fleet=fleet)).status_code == 202
    assert len(receiver.requests) == 3 and emitter.sent == 1


def test_emitter_does_not_retry_a_rejection(fleet: Fleet, receiver) -> None:
    receiver.script = [422]
    fault = FaultInjector(fleet, seed=1).inject("memory_leak")
    emitter = AlertEmitter(receiver.url, retries=3, backoff_s=0.01)
    with pytest.raises(EmitError, match="422"):
        emitter.emit(to_alertmanager(fault, fleet=fleet))
    assert len(receiver.requests) == 1


def test_emitter_gives_up_on_an_unreachable_url(fleet: Fleet) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        emitter = AlertEmitter(f"http://127.0.0.1:{port}/ingest", retries=2, backoff_s=0.01, timeout_s=1)
        fault = FaultInjector(fleet, seed=1).inject("memory_leak")
        with pytest.raises(EmitError, match="after 3 tries"):
            emitter.emit(to_alertmanager(fault, fleet=fleet))
    assert emitter.failed == 1
