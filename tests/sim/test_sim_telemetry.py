"""A fault degrades telemetry and health; the right mitigation clears it, a wrong one does not."""

from __future__ import annotations

import re
import time

import pytest

from sim.faults import FAULT_KINDS, NODE_ACTIONS, SERVICE_ACTIONS, FaultInjector
from sim.fleet import Fleet
from sim.telemetry import METRICS, THRESHOLDS, Telemetry

pytestmark = pytest.mark.integration

# The metric a probe would look at first for each kind, and the direction it moves.
SYMPTOM = {
    "disk_failure": ("disk_io_errors", "above"),
    "kernel_hang": ("heartbeat", "zero"),
    "network_partition": ("latency_p99_ms", "above"),
    "memory_leak": ("mem", "above"),
    "bad_deploy": ("error_rate", "above"),
    "cpu_saturation": ("cpu", "above"),
    "node_memory_pressure": ("mem", "above"),
    "nic_degradation": ("net_rx_drops", "above"),
    "cpu_steal": ("cpu_steal", "above"),
    "traffic_surge": ("latency_p99_ms", "above"),
    "bad_config": ("error_rate", "above"),
    "connection_leak": ("latency_p99_ms", "above"),
}


def _signature_regexes(kind: str) -> list[re.Pattern[str]]:
    """Each signature template as a regex (placeholders become wildcards)."""
    out = []
    for template in FAULT_KINDS[kind].signatures:
        pattern = re.escape(template)
        pattern = re.sub(r"\\\{[a-z0-9]+\\\}", ".+?", pattern)
        out.append(re.compile(pattern))
    return out


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
def test_fault_degrades_telemetry_and_only_a_fixing_action_clears_it(fleet: Fleet, kind: str) -> None:
    telemetry = Telemetry(fleet, seed=1)
    spec = FAULT_KINDS[kind]
    now = time.time()
    fault = FaultInjector(fleet, seed=2).inject(kind, at=now - 90)
    target = fault.target
    # a node's own health is its own (a service's fault does not make its host unhealthy); a service
    # fault shows on the service and on those that call it, never on an unrelated service
    others = [n.id for n in fleet.nodes if n.id != target]
    hit = set(fleet.node(target).services) if spec.level == "node" else {target, *fleet.callers_of(target)}
    unrelated = [s for s in fleet.services if s not in hit]

    # health and metrics show it, on the target only
    assert not telemetry.health(target)
    assert all(telemetry.health(n) for n in others)
    assert all(telemetry.health(s) for s in unrelated)
    series = telemetry.metrics(target, minutes=5)
    assert set(series) == set(METRICS)
    metric, direction = SYMPTOM[kind]
    before = [v for ts, v in series[metric] if ts < fault.started_at]
    during = [v for ts, v in series[metric] if ts >= fault.started_at]
    assert before and during
    if direction == "zero":
        assert min(before) == 1.0 and max(during) == 0.0
    else:
        limit = THRESHOLDS[metric]
        assert max(before) <= limit < min(during), (metric, before, during)

    # logs carry the fault's signature lines, mixed into ordinary lines, never the label itself
    lines = telemetry.logs(target, minutes=5)
    regexes = _signature_regexes(kind)
    signature = [line for line in lines if any(r.search(line) for r in regexes)]
    assert signature, f"no {kind} signature in {len(lines)} lines"
    assert len(signature) < len(lines) / 2 + 1
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ ", line) for line in lines)
    assert not any(kind in line for line in lines)
    stamps = [line.split()[0] for line in lines]
    assert stamps == sorted(stamps)
    before_lines = telemetry.logs(target, minutes=5, now=fault.started_at - 1)
    assert not any(any(r.search(line) for r in regexes) for line in before_lines)

    # a wrong action leaves the fault, the right one clears it and health comes back
    allowed = NODE_ACTIONS if spec.level == "node" else SERVICE_ACTIONS
    wrong = sorted(a for a in allowed if a not in spec.fixes and a != "wait")[0]
    result = fleet.apply_mitigation(target, wrong)
    assert result.ok and not result.fixed and fault.active
    assert not telemetry.health(target)
    right = sorted(spec.fixes)[0]
    result = fleet.apply_mitigation(target, right)
    assert result.fixed and not fault.active
    assert telemetry.health(target), telemetry.status(target)

    truth = fleet.ground_truth()[-1]
    assert truth["id"] == fault.id and truth["resolved_by"] == right
    assert truth["injected_at"] == pytest.approx(now - 90)
    assert truth["time_to_recover_s"] >= 90
    assert [a["action"] for a in truth["attempts"]] == [wrong, right]
    assert [a["fixed"] for a in truth["attempts"]] == [False, True]


def test_history_keeps_the_fault_after_it_is_resolved(fleet: Fleet) -> None:
    telemetry = Telemetry(fleet, seed=1)
    fault = FaultInjector(fleet, seed=2).inject("bad_deploy", "checkout", at=time.time() - 120)
    fleet.apply_mitigation("checkout", "rollback")
    rates = [
        v for ts, v in telemetry.metrics("checkout", minutes=4)["error_rate"] if ts < fault.resolved_at - 1
    ]
    assert max(rates) > THRESHOLDS["error_rate"]
    assert telemetry.health("checkout")


def test_telemetry_is_deterministic_for_a_seed(fleet: Fleet) -> None:
    FaultInjector(fleet, seed=2).inject("memory_leak", "catalog", at=time.time() - 60)
    now = time.time()
    a, b, c = Telemetry(fleet, seed=5), Telemetry(fleet, seed=5), Telemetry(fleet, seed=6)
    assert a.metrics("catalog", now=now) == b.metrics("catalog", now=now)
    assert a.logs("catalog", now=now) == b.logs("catalog", now=now)
    assert a.metrics("catalog", now=now) != c.metrics("catalog", now=now)
    node = fleet.services["catalog"][0]
    assert a.logs(node, now=now) == b.logs(node, now=now) != c.logs(node, now=now)


def test_healthy_fleet_has_no_breaches_and_varied_noise(fleet: Fleet) -> None:
    telemetry = Telemetry(fleet, seed=3)
    for target in [n.id for n in fleet.nodes] + list(fleet.services):
        status = telemetry.status(target)
        assert status["healthy"], status["breaches"]
    lines = telemetry.logs(fleet.nodes[0].id, minutes=15)
    assert len(lines) > 100
    assert len(set(line.split(" ", 2)[2] for line in lines)) > 50  # not one line repeated
    assert any(" WARN " in line or " ERROR " in line for line in lines)  # noise includes red herrings
