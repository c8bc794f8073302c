"""Scenarios: seeded and balanced over kinds; cascades alert on a dependent while the fix stays on the root."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from services.ingest.normalize import normalize
from sim.alerts import to_alertmanager
from sim.faults import FAULT_KINDS, FaultInjector
from sim.fleet import Fleet
from sim.scenarios import Scenario, generate, stage, stage_all
from sim.telemetry import Telemetry

pytestmark = pytest.mark.integration


def test_generate_is_balanced_reproducible_and_seed_sets_are_disjoint() -> None:
    a, b, other = generate(120, seed=0), generate(120, seed=0), generate(120, seed=1)
    assert a == b and a != other
    assert len(FAULT_KINDS) >= 12
    assert set(Counter(s.kind for s in a).values()) == {10}  # every kind equally often
    assert {s.seed for s in a}.isdisjoint({s.seed for s in other})
    assert 0.25 < sum(s.cascade for s in a) / len(a) < 0.55
    assert any(s.decoy_change for s in a) and not all(s.decoy_change for s in a)
    with pytest.raises(ValueError):
        generate(3, kinds=("no_such_kind",))


def test_a_service_cascade_alerts_on_the_caller_and_only_the_root_fix_clears_it(fleet: Fleet) -> None:
    telemetry = Telemetry(fleet, seed=4)
    fault = FaultInjector(fleet, seed=3).inject("cpu_saturation", "catalog", at=time.time() - 120, cascade=True)
    caller = fault.alert_service
    assert caller in fleet.callers_of("catalog")
    alert = normalize(to_alertmanager(fault, fleet=fleet, telemetry=telemetry))[0]
    assert (alert.name, alert.service) == ("ServiceHighLatency", caller)
    assert not telemetry.health(caller) and not telemetry.health("catalog")
    client = telemetry.metrics(caller, minutes=5)["client_latency_p99_ms"]
    assert client[-1][1] > 1500 > client[0][1]  # the caller sees its dependency slow down
    # traces show the slow edge; the topology holds the call graph and the placement
    edges = telemetry.topology()["edges"]
    assert [caller, "catalog"] in edges and all([s, n] in edges for s, ns in fleet.services.items() for n in ns)
    trace = next(t for t in telemetry.traces(caller, minutes=5) if t["callee"] == "catalog")
    assert trace["latency"][-1][1] > 1500
    assert fleet.apply_mitigation(caller, "scale_out").fixed is False  # treating the victim does nothing
    assert not telemetry.health(caller)
    assert fleet.apply_mitigation("catalog", "scale_out").fixed is True
    assert telemetry.health(caller) and telemetry.health("catalog")


def test_a_node_cascade_alerts_on_a_hosted_service_with_the_node_named(fleet: Fleet) -> None:
    telemetry = Telemetry(fleet, seed=4)
    fault = FaultInjector(fleet, seed=5).inject("disk_failure", at=time.time() - 60, cascade=True)
    alert = normalize(to_alertmanager(fault, fleet=fleet, telemetry=telemetry))[0]
    assert alert.service == fault.alert_service and alert.service in fleet.node(fault.target).services
    assert alert.node == fault.target and alert.labels["job"] == alert.service
    assert alert.name == FAULT_KINDS["disk_failure"].cascade_alert
    # a service on another node is not dragged down by the node fault: the fleet is not one blob
    elsewhere = [s for s, nodes in fleet.services.items() if fault.target not in nodes]
    assert all(telemetry.health(s) for s in elsewhere)
    assert fleet.apply_mitigation(alert.service, "restart_service").fixed is False
    assert fleet.apply_mitigation(fault.target, "replace").fixed is True


def test_a_change_kind_arrives_with_its_change_event_and_decoys_are_elsewhere(fleet: Fleet) -> None:
    telemetry = Telemetry(fleet, seed=4)
    scenario = Scenario(index=0, seed=7, kind="bad_config", cascade=False, decoy_change=True)
    fault = stage(scenario, fleet, at=time.time() - 60)
    changes = telemetry.changes(minutes=30)
    assert {c["kind"] for c in changes if c["component"] == fault.target} == {"config"}
    assert any(c["component"] != fault.target for c in changes)  # the decoy, on an uninvolved service
    assert fleet.apply_mitigation(fault.target, "rollback").fixed is True


def test_shed_load_and_failover_are_real_service_actions(fleet: Fleet) -> None:
    surge = FaultInjector(fleet, seed=1).inject("traffic_surge", "search", at=time.time() - 60)
    result = fleet.apply_mitigation("search", "shed_load")
    assert result.fixed and not surge.active and any("ssm:SendCommand" in c for c in result.cloud_calls)
    before = set(fleet.services["checkout"])
    moved = fleet.apply_mitigation("checkout", "failover")
    assert moved.ok and not moved.fixed
    assert set(fleet.services["checkout"]).isdisjoint(before) and len(fleet.services["checkout"]) == len(before)


def test_the_sim_api_serves_call_edges_traces_and_changes_for_the_http_connector(fleet: Fleet) -> None:
    from services.connectors.http import HttpTelemetry
    from sim.server import SimServer

    FaultInjector(fleet, seed=2).inject("bad_deploy", "payments", at=time.time() - 90, cascade=True)
    server = SimServer(fleet, telemetry=Telemetry(fleet, seed=2))
    server.start()
    try:
        remote = HttpTelemetry(server.url)
        topology = remote.topology()
        assert ["checkout", "payments"] in topology["edges"] and topology["components"]["payments"] == "service"
        edge = next(e for e in remote.traces("checkout", minutes=5) if e["callee"] == "payments")
        assert edge["errors"][-1][1] > 0.05
        assert [c["component"] for c in remote.changes(minutes=30)] == ["payments"]
    finally:
        server.stop()


def test_variants_come_in_their_shares_without_changing_the_base_draws() -> None:
    plain = generate(300, seed=0, two_fault_share=0, noise_share=0, paraphrase_share=0)
    full = generate(300, seed=0)
    assert [(s.kind, s.cascade, s.decoy_change) for s in plain] == [(s.kind, s.cascade, s.decoy_change) for s in full]
    assert 0.08 < sum(bool(s.second_kind) for s in full) / 300 < 0.25
    assert all(s.second_kind != s.kind for s in full if s.second_kind)
    assert 0.12 < sum(bool(s.noise_alerts) for s in full) / 300 < 0.3
    assert {s.wording for s in full} == {None, "tune"}  # the tuning seed set sees only the tune wording
    assert {s.wording for s in generate(300, seed=1)} == {None, "held_out"}
    assert "two faults" in next(s for s in full if s.second_kind).variants()


def test_two_faults_and_noise_are_staged_apart_and_noise_is_over_before_the_faults(moto_server) -> None:
    fleet = Fleet.provision(moto_server.endpoint_url, nodes=6, seed=3)  # the bench's size: room for a blip elsewhere
    now = time.time()
    scenario = Scenario(index=0, seed=3, kind="memory_leak", cascade=False, decoy_change=False,
                        second_kind="disk_failure", noise_alerts=1)
    staged = stage_all(scenario, fleet, at=now - 30)
    first, second = staged.faults
    assert (first.kind, second.kind) == ("memory_leak", "disk_failure") and first.active and second.active
    assert second.target not in fleet.services[first.target]  # the disk is not under the leaking service
    [blip] = staged.noise
    assert not blip.active and blip.resolved_at < now - 30  # it cleared by itself before the faults began
    assert staged.picked_up[blip.id] >= blip.resolved_at
    telemetry = Telemetry(fleet, seed=3)
    assert telemetry.health(blip.target, now=staged.picked_up[blip.id])  # well again when its alert is picked up
    assert fleet.apply_mitigation(blip.target, "restart_service" if blip.level == "service" else "reboot").fixed is False


def test_paraphrased_telemetry_logs_none_of_the_catalogs_lines(fleet: Fleet) -> None:
    fault = FaultInjector(fleet, seed=1).inject("memory_leak", "checkout", at=time.time() - 300)
    plain = "\n".join(Telemetry(fleet, seed=1).logs("checkout", minutes=5))
    held = "\n".join(Telemetry(fleet, seed=1, wording="held_out").logs("checkout", minutes=5))
    assert "OutOfMemoryError" in plain and "OutOfMemoryError" not in held
    assert "arena brimming" in held or "resident" in held or "allowance" in held
    assert fault.active
