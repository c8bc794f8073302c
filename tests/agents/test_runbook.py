"""The runbook is by fault family, not by label; blast radius reads the topology in the state."""

from __future__ import annotations

import pytest

from agents.blast import dependents
from agents.runbook import act_order, choose, family_of, level_matches, settle_s


@pytest.mark.parametrize(("fault", "family"), [
    ("disk_failure", "hardware"), ("nvme_media_error", "hardware"), ("kernel_hang", "hang"),
    ("soft_lockup", "hang"), ("memory_leak", "leak"), ("oom_kill", "leak"), ("cpu_saturation", "capacity"),
    ("overload", "capacity"), ("network_partition", "network"), ("network_delay", "network"),
    ("bad_deploy", "change"), ("config_change", "change"), ("upstream_timeout", "dependency"),
    ("unknown", None), ("", None), ("cosmic_ray", None),
])
def test_fault_names_fall_into_families(fault, family):
    assert family_of(fault) == family


def test_service_and_node_actions_follow_the_kind():
    alert = {"service": "frontend", "node": "node-1"}
    assert choose({"root_cause": "memory_leak", "component": "cart", "component_kind": "service"}, alert=alert)[
        "action"] == "restart_service"
    node = choose({"root_cause": "memory_leak", "component": "node-4", "component_kind": "node"}, alert=alert)
    assert (node["action"], node["target"]) == ("reboot", "node-4")
    assert choose({"root_cause": "cpu_saturation", "component": "cart", "component_kind": "service"},
                  alert=alert)["action"] == "scale_out"


def test_a_change_event_on_the_component_makes_it_a_rollback():
    change = {"kind": "change", "component": "cart", "detail": "deploy cart v9"}
    step = choose({"root_cause": "upstream_timeout", "component": "cart", "component_kind": "service",
                   "evidence": [change]}, alert={"service": "frontend"})
    assert step["action"] == "rollback" and "deploy cart v9" in step["reason"]
    elsewhere = {**change, "component": "payments"}
    step = choose({"root_cause": "upstream_timeout", "component": "cart", "component_kind": "service",
                   "evidence": [elsewhere]}, alert={"service": "frontend"})
    assert step["action"] == "shed_load"


def test_unknown_faults_and_components_escalate():
    assert choose({"root_cause": "unknown", "component": "cart"}, alert={})["action"] == "escalate"
    assert choose({"root_cause": "memory_leak", "component": "orders-db", "component_kind": "database"},
                  alert={})["action"] == "escalate"
    assert choose({"root_cause": "memory_leak"}, alert={})["action"] == "escalate"  # no target at all


def test_dependents_are_transitive_callers_and_hosted_services():
    topology = {"edges": [("web", "api"), ("api", "cart"), ("batch", "api")], "placement": {"cart": "node-2"}}
    assert dependents("cart", kind="service", topology=topology) == ["api", "batch", "web"]
    assert dependents("node-2", kind="node", topology=topology) == ["api", "batch", "cart", "web"]
    assert dependents("web", kind="service", topology=topology) == []


@pytest.mark.parametrize(("fault", "kind", "fits"), [
    ("disk_failure", "service", False), ("disk_failure", "node", True), ("kernel_hang", "service", False),
    ("network_partition", "pod", False), ("bad_deploy", "node", False), ("bad_deploy", "service", True),
    ("memory_leak", "node", True), ("memory_leak", "service", True), ("cpu_saturation", "database", True),
])
def test_a_fault_only_one_kind_of_component_can_have(fault, kind, fits):
    assert level_matches({"root_cause": fault, "component": "x", "component_kind": kind}) is fits


def test_act_order_keeps_the_ranking_but_moves_misplaced_faults_last():
    ranked = [{"root_cause": "kernel_hang", "component_kind": "service", "component": "a"},
              {"root_cause": "memory_leak", "component_kind": "service", "component": "b"},
              {"root_cause": "kernel_hang", "component_kind": "node", "component": "n"}]
    assert [h["component"] for h in act_order(ranked)] == ["b", "n", "a"]


def test_settle_times_are_shorter_for_quick_actions():
    assert settle_s("restart_service") < settle_s("rollback") <= settle_s("unknown_action")


def test_for_a_machine_alert_the_alerted_node_is_acted_on_before_the_services_it_hosts():
    ranked = [{"root_cause": "bad_deploy", "component_kind": "service", "component": "payments", "confidence": 0.5},
              {"root_cause": "kernel_hang", "component_kind": "node", "component": "node-4", "confidence": 0.4}]
    machine = {"name": "NodeHeartbeatMissing", "node": "node-4", "service": "payments", "labels": {"job": "node"}}
    assert [h["component"] for h in act_order(ranked, alert=machine)] == ["node-4", "payments"]
    service_alert = {**machine, "labels": {"job": "payments"}}
    assert [h["component"] for h in act_order(ranked, alert=service_alert)] == ["payments", "node-4"]


def test_a_latency_label_without_a_network_signal_acts_on_the_runner_up_cause_or_restarts():
    slow = {"root_cause": "network_delay", "component": "search", "component_kind": "service",
            "alternatives": ["bad_deploy", "cpu_saturation"], "evidence": [{"signal": "latency", "component": "search"}]}
    step = choose(slow, alert={"service": "search"})
    assert step["action"] == "scale_out" and "runner-up cause cpu_saturation" in step["reason"]
    assert choose({**slow, "alternatives": ["bad_deploy"]}, alert={"service": "search"})["action"] == "restart_service"
    # with packet drops on the service itself it is a network fault after all: the family's action stands
    dropping = {**slow, "evidence": [{"signal": "network", "component": "search", "metric": "net_rx_drops"}]}
    assert choose(dropping, alert={"service": "search"})["action"] == "failover"


def test_a_bad_change_label_without_a_change_event_takes_the_runner_up_cause():
    alert = {"service": "frontend", "node": "node-1"}
    bare = {"root_cause": "bad_deploy", "component": "cart", "component_kind": "service", "alternatives": ["cpu_saturation"]}
    assert choose(bare, alert=alert)["action"] == "scale_out"
    assert choose({**bare, "alternatives": []}, alert=alert)["action"] == "restart_service"
    change = {"kind": "change", "component": "cart", "detail": "deploy cart v9"}
    assert choose({**bare, "evidence": [change]}, alert=alert)["action"] == "rollback"


def test_a_delay_on_a_node_without_network_signal_takes_the_runner_up_cause():
    alert = {"node": "node-1", "labels": {"job": "node"}}
    slow = {"root_cause": "network_delay", "component": "node-1", "component_kind": "node",
            "alternatives": ["memory_leak", "kernel_hang"]}
    assert choose(slow, alert=alert)["action"] == "reboot"
    assert choose({**slow, "alternatives": []}, alert=alert)["action"] == "redeploy"  # the family's own node action
    dropping = {**slow, "evidence": [{"kind": "metric", "signal": "network", "component": "node-1"}]}
    assert choose(dropping, alert=alert)["action"] == "redeploy"  # a network signal of its own: it is the network
