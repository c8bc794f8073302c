"""The loop injects faults, sends firing alerts, and sends resolved alerts once the platform fixes them."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from sim.fleet import Fleet
from sim.runner import Simulation
from sim.server import SimServer
from sim.stack import SimStack

pytestmark = pytest.mark.integration


def test_step_injects_emits_and_resolves(fleet: Fleet, receiver) -> None:
    sim = Simulation(fleet, seed=4, fault_interval_s=3600, emit_url=receiver.url, first_fault_after_s=0)
    events = sim.step()
    injected = [e for e in events if e["type"] == "injected"]
    assert len(injected) == 1
    fault = fleet.active_faults()[0]
    assert [p["status"] for p in receiver.payloads()] == ["firing"]

    assert sim.step() == []  # nothing due, nothing new
    fleet.apply_mitigation(fault.target, sorted(fault.fixing_actions)[0])
    events = sim.step()
    assert [e["type"] for e in events] == ["resolved", "alert_sent"]
    firing, resolved = receiver.payloads()
    assert resolved["status"] == "resolved" and resolved["groupKey"] == firing["groupKey"]

    summary = sim.summary()
    assert summary["faults_injected"] == summary["faults_resolved"] == 1
    assert summary["mean_time_to_recover_s"] == pytest.approx(fault.time_to_recover_s)
    assert summary["alerts_sent"] == 2 and summary["alerts_pending"] == 0


def test_undelivered_alerts_are_kept_and_retried(fleet: Fleet, receiver) -> None:
    receiver.script = [503, 503, 503, 202]  # the platform is "starting": the first step's tries all fail
    sim = Simulation(fleet, seed=4, fault_interval_s=3600, emit_url=receiver.url, first_fault_after_s=0)
    sim.emitter.backoff_s = 0.01
    sim.step()
    assert sim.summary()["alerts_pending"] == 1 and receiver.payloads() and sim.emitter.sent == 0
    sim.step()
    assert sim.summary()["alerts_pending"] == 0 and sim.emitter.sent == 1


def test_run_injects_on_schedule_and_respects_the_cap(fleet: Fleet) -> None:
    sim = Simulation(fleet, seed=9, fault_interval_s=0.2, first_fault_after_s=0, max_active_faults=2)
    stop = threading.Event()
    summary = sim.run(1.5, stop, tick_s=0.05)
    assert summary["faults_injected"] == 2 == summary["faults_active"]
    targets = [f.target for f in fleet.active_faults()]
    assert len(set(targets)) == 2


def test_stop_event_ends_the_run_early(fleet: Fleet) -> None:
    sim = Simulation(fleet, seed=9, fault_interval_s=60)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    sim.run(30, stop, tick_s=0.05)
    assert time.monotonic() - started < 5


def test_sim_api_serves_probes_and_mitigations(fleet: Fleet) -> None:
    api = SimServer(fleet, seed=2).start()
    try:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            topo = http.get("/topology").json()
            assert topo["cluster"] == fleet.cluster and len(topo["nodes"]) == 4
            assert topo["endpoint_url"] == fleet.endpoint_url

            fault = http.post("/inject", json={"kind": "kernel_hang"}).json()
            node = fault["target"]
            assert http.get("/health", params={"target": node}).json()["healthy"] is False
            series = http.get("/metrics", params={"target": node, "minutes": 2}).json()["series"]
            assert series["heartbeat"][-1][1] == 0.0
            lines = http.get("/logs", params={"target": node, "minutes": 2}).json()["lines"]
            assert any(
                "soft lockup" in line or "blocked for more than" in line or "rcu_sched" in line
                for line in lines
            )

            wrong = http.post("/mitigate", json={"target": node, "action": "migrate"}).json()
            assert wrong["fixed"] is False
            right = http.post("/mitigate", json={"target": node, "action": "reboot"}).json()
            assert right["fixed"] is True and right["cloud_calls"][0].startswith("ec2:RebootInstances")
            assert http.get("/health", params={"target": node}).json()["healthy"] is True

            truth = http.get("/ground-truth").json()["faults"]
            assert truth[-1]["resolved_by"] == "reboot" and truth[-1]["kind"] == "kernel_hang"
            assert http.get("/health", params={"target": "nope"}).status_code == 404
            assert http.post("/mitigate", json={"target": node, "action": "rollback"}).status_code == 400
            assert http.get("/metrics").status_code == 400
    finally:
        api.stop()


def test_stack_runs_beside_a_receiver_end_to_end(moto_server, receiver) -> None:
    """What ``aiops demo`` does, with a stand-in platform that fixes each fault it is alerted about."""
    stack = SimStack.start(
        emit_url=receiver.url,
        moto_endpoint=moto_server.endpoint_url,
        nodes=4,
        seed=21,
        fault_interval_s=0.3,
        first_fault_after_s=0,
        max_active_faults=2,
    )
    try:
        thread = stack.run_in_background(60.0, tick_s=0.05)
        fixed: set[str] = set()
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=stack.api_url, timeout=10) as http:
            while len(fixed) < 3 and time.monotonic() < deadline:
                for payload in list(receiver.payloads()):
                    labels = payload["alerts"][0]["labels"]
                    target = labels["node"] if labels["job"] == "node" else labels["service"]
                    if payload["status"] != "firing" or target in fixed:
                        continue
                    # a "platform" that cheats with ground truth, to exercise the loop, not diagnosis
                    # (a cascade alerts on a dependent service: the fix goes to the fault's own target)
                    truth = [
                        f
                        for f in http.get("/ground-truth").json()["faults"]
                        if target in (f["target"], f["alert_service"]) and not f["resolved_at"]
                    ]
                    if truth:
                        action = truth[0]["fixing_actions"][0]
                        root = truth[0]["target"]
                        assert http.post("/mitigate", json={"target": root, "action": action}).json()["fixed"]
                        fixed.add(target)
                time.sleep(0.05)
        stack.stop_loop()
        assert not thread.is_alive()
        summary = stack.summary()
        assert len(fixed) == 3
        assert summary["faults_injected"] >= 3
        assert summary["faults_resolved"] == 3
        assert summary["mean_time_to_recover_s"] > 30  # faults begin onset_lead_s before their alert
        statuses = [p["status"] for p in receiver.payloads()]
        assert statuses.count("resolved") == 3
        assert statuses.count("firing") == summary["faults_injected"]
    finally:
        stack.stop()
