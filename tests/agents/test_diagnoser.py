"""The diagnoser's ranking: log evidence first, weighted by the alert's scope and name."""

from agents.diagnoser import alert_scope, rank_hypotheses


def test_node_alert_prefers_node_causes_over_noisy_service_lines():
    context = "\n".join([
        "catalog[311]: WARN slow request GET /api/catalog/items took 2100ms (threshold 500ms)",
        "catalog[311]: WARN worker pool exhausted: 812 requests queued, rejecting",
        "kernel: watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [catalog:311]",
        "kernel: rcu: INFO: rcu_sched self-detected stall on CPU 3",
    ])
    alert = {"name": "NodeHeartbeatMissing", "service": "catalog", "labels": {"job": "node"}}
    ranked = rank_hypotheses(context, anomalies={}, recalled=[], alert=alert)
    assert ranked[0]["root_cause"] == "kernel_hang"
    assert alert_scope(alert) == "node"


def test_service_alert_and_recalled_episodes_vote():
    context = "checkout[9]: ERROR java.lang.OutOfMemoryError: Java heap space"
    alert = {"name": "ServiceHighMemory", "service": "checkout", "labels": {"job": "checkout"}}
    ranked = rank_hypotheses(context, anomalies={}, recalled=[{"root_cause": "memory_leak"}], alert=alert)
    assert ranked[0]["root_cause"] == "memory_leak"
    assert "1 similar past episode(s)" in ranked[0]["evidence"]
    assert abs(sum(h["confidence"] for h in ranked) - 1.0) < 1e-6


def test_no_evidence_means_no_hypothesis():
    assert rank_hypotheses("all good", anomalies={}, recalled=[], alert={"name": "X"}) == []
