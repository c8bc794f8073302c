"""The actor's safety gates and the supervisor's decisions, on the in-memory graph (no servers).

The observer and diagnoser are replaced by stubs that hand the graph a given ranking, so each test
states exactly which hypotheses the actor sees; everything after ``diagnose`` is production code.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agents import diagnoser, observer
from agents.actor import alert_source
from agents.graph import build_graph
from agents.supervisor import DEFAULT_SCOPE
from agents.tools import ActionPolicy, AgentTools


class Store:
    """``IncidentStore`` in memory, with the action ledger's finished/started distinction."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.incident: dict[str, Any] = {}
        self.ledger: dict[str, dict[str, Any]] = {}
        self.approvals: list[dict[str, Any]] = []
        self.hourly = 0
        self.source: dict[str, Any] = {"firing": 1, "resolved": 0}

    def add_event(self, incident_id, *, kind, actor, message, data=None, dedup_key=None):
        if dedup_key and any(e["key"] == dedup_key for e in self.events):
            return
        self.events.append({"kind": kind, "actor": actor, "message": message, "data": data or {}, "key": dedup_key})

    def update_incident(self, incident_id, **fields):
        self.incident.update(fields)

    def save_hypotheses(self, incident_id, hypotheses):
        self.incident["hypotheses"] = hypotheses

    def request_approval(self, incident_id, *, action, target, risk, reason, round=0):
        earlier = [a for a in self.approvals if (a["action"], a["target"]) == (action, target)]
        if len(earlier) > round:
            return earlier[round]["id"]
        self.approvals.append({"id": len(self.approvals) + 1, "action": action, "target": target, "risk": risk,
                               "status": "pending"})
        return len(self.approvals)

    def begin_action(self, key, **_):
        entry = self.ledger.get(key)
        if entry and entry["status"] in {"succeeded", "failed"}:
            return entry["result"]
        self.ledger.setdefault(key, {"status": "started", "result": {}})
        return None

    def finish_action(self, key, *, status, result):
        self.ledger[key] = {"status": status, "result": result}

    def actions_in_last_hour(self):
        return self.hourly

    def source_status(self, incident_id):
        return self.source

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    def last(self, kind: str) -> dict[str, Any]:
        return [e for e in self.events if e["kind"] == kind][-1]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Cloud:
    def __init__(self, *, fails: set[str] = frozenset(), refuses: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, str]] = []
        self.done: list[tuple[str, str]] = []  # the calls that ran (not refused, not raised)
        self.keys: list[str | None] = []
        self.fails, self.refuses = set(fails), set(refuses)

    def execute(self, action, target, *, params):
        self.calls.append((action, target))
        self.keys.append(params.get("idempotency_key"))
        if action in self.refuses:
            raise NotImplementedError(f"{action} does not apply to {target}")
        if action in self.fails:
            raise RuntimeError(f"{action} refused by the cloud")
        self.done.append((action, target))
        return {"effect": f"{action} done"}

    def describe(self, target):
        return {"healthy": None}


class Probes:
    """Health per target: a bool, or a list consumed one probe at a time; each probe costs 10 s.

    A target not given is unhealthy until the cloud has run an action on it (the fault is there until
    someone fixes it), and the alert's own component (``symptom``) until the cloud has run any action.
    """

    def __init__(self, clock: Clock, health: dict[str, Any] | None = None, *, cloud: Cloud | None = None) -> None:
        self.clock, self.health_of, self.probed = clock, dict(health or {}), []
        self.cloud, self.symptom = cloud, None

    def metrics(self, target, *, minutes=15):
        return {}

    def logs(self, target, *, minutes=15):
        return []

    def health(self, target):
        self.probed.append(target)
        self.clock.t += 10
        if target not in self.health_of and self.cloud is not None:
            return bool(self.cloud.done) if target == self.symptom else any(t == target for _, t in self.cloud.done)
        value = self.health_of.get(target, True)
        if isinstance(value, list):
            return value.pop(0) if len(value) > 1 else value[0]
        return value


def hyp(fault: str, component: str, kind: str = "service", confidence: float = 0.8, evidence=None) -> dict[str, Any]:
    return {"root_cause": fault, "fault": fault, "component": component, "component_kind": kind,
            "confidence": confidence, "evidence": evidence or []}


def deployed(component: str) -> dict[str, Any]:
    """A change event on ``component`` in a hypothesis' evidence (what a rollback needs)."""
    return {"kind": "change", "component": component, "detail": f"deploy {component} v2 5 min ago"}


ALERT = {"name": "ServiceHighErrorRate", "severity": "critical", "service": "frontend", "node": "node-1",
         "labels": {}, "summary": "frontend 5xx above 5%"}


@pytest.fixture
def harness(monkeypatch):
    """Build a graph whose diagnosis returns ``rankings`` (one list per diagnose run) and drive it."""
    seen_scopes: list[dict[str, Any]] = []

    def make(rankings, *, policy: ActionPolicy | None = None, health=None, cloud: Cloud | None = None, **hooks):
        rounds = list(rankings)
        edges = hooks.pop("edges", [])
        looks = list(hooks.pop("looks", []))  # the components each look finds (else: no case components)

        def fake_observe(state, *, tools):
            seen_scopes.append(dict(state.get("probe_scope") or {}))
            case: dict[str, Any] = {"edges": edges, "placement": {}}
            if looks:
                case["components"] = looks.pop(0) if len(looks) > 1 else looks[0]
            return {"context": "", "signals": {"case": case}}

        def fake_diagnose(state, *, tools):
            ranked = rounds.pop(0) if len(rounds) > 1 else rounds[0]
            tools.store.save_hypotheses(state["incident_id"], ranked)
            return {"hypotheses": ranked, "attempt": 0}

        monkeypatch.setattr(observer, "observe", fake_observe)
        monkeypatch.setattr(diagnoser, "diagnose", fake_diagnose)
        clock = Clock()
        store, cloud = Store(), cloud or Cloud()
        tools = AgentTools(store=store, cloud=cloud, telemetry=Probes(clock, health, cloud=cloud),
                           policy=policy or ActionPolicy(verify_timeout_s=30, verify_interval_s=10), clock=clock,
                           **hooks)
        graph = build_graph(tools, checkpointer=InMemorySaver())
        return Run(graph, tools, store, cloud, clock, seen_scopes)

    return make


class Run:
    def __init__(self, graph, tools, store, cloud, clock, scopes) -> None:
        self.graph, self.tools, self.store, self.cloud, self.clock, self.scopes = graph, tools, store, cloud, clock, scopes
        self.config = {"configurable": {"thread_id": "t"}}
        self.pauses: list[tuple[str, ...]] = []

    def drive(self, resume: dict[str, Any] | None = None, *, alert=ALERT):
        """Invoke until the graph ends or waits for a person; returns the final snapshot."""
        if resume is not None:
            self.graph.invoke(Command(resume=resume), self.config)
        elif not self.graph.get_state(self.config).values:
            self.tools.telemetry.symptom = alert_source(alert)
            self.graph.invoke({"incident_id": 1, "alert": alert}, self.config)
        snapshot = self.graph.get_state(self.config)
        while snapshot.next and not snapshot.interrupts:
            self.pauses.append(snapshot.next)
            self.graph.invoke(None, self.config)
            snapshot = self.graph.get_state(self.config)
        return snapshot


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch):
    """No graph node may hold its thread: a sleep anywhere in a node fails the test."""
    def refuse(_seconds):
        raise AssertionError("a graph node slept")
    monkeypatch.setattr(time, "sleep", refuse)


# ---------------------------------------------------------------- acting on the diagnosis

def test_acts_on_the_diagnosed_upstream_component_with_a_rollback_a_change_explains(harness):
    change = {"kind": "change", "component": "payments", "detail": "deploy payments v2.3.0 10 min ago"}
    run = harness([[hyp("error_burst", "payments", evidence=[change])]])
    final = run.drive()
    assert run.cloud.calls == [("rollback", "payments")]  # not the alerted frontend
    assert run.cloud.keys == ["incident:1:attempt:0:rollback:payments"]  # the ledger's key reaches the cloud
    assert final.values["outcome"] == "resolved"
    assert "a change explains" in run.store.last("planned")["message"]


def test_node_fault_goes_through_the_causal_recommender(harness):
    asked = []

    def recommend(request):
        asked.append(request)
        return {"action": "redeploy", "risk": "medium", "reason": "causal model", "features": {"f": 1}}

    recorded = []
    run = harness([[hyp("kernel_hang", "node-7", kind="node")]], recommend_node_action=recommend,
                  record_mitigation=recorded.append)
    run.drive()
    assert asked[0]["node"] == "node-7"
    assert run.cloud.calls == [("redeploy", "node-7")]
    assert recorded and recorded[0]["recovered"] is True


def test_legacy_hypothesis_without_component_falls_back_to_the_alert_target(harness):
    run = harness([[{"root_cause": "memory_leak", "confidence": 1.0, "evidence": ["oom"]}]])
    run.drive()
    assert run.cloud.calls == [("restart_service", "frontend")]


def test_unknown_fault_escalates_with_a_written_summary(harness):
    run = harness([[hyp("unknown", "frontend", confidence=0.9)]], policy=ActionPolicy(probe_budget=0))
    final = run.drive()
    assert run.cloud.calls == []
    assert final.values["outcome"] == "escalated"
    closed = run.store.last("escalated")["message"]
    assert "Escalated:" in closed and "unknown on frontend" in closed and "ServiceHighErrorRate" in closed


# ---------------------------------------------------------------- the policy gate

def test_kill_switch_blocks_every_action(harness):
    run = harness([[hyp("memory_leak", "checkout")]], policy=ActionPolicy(actions_enabled=False))
    final = run.drive()
    assert run.cloud.calls == []
    assert final.values["outcome"] == "blocked" and run.store.incident["status"] == "escalated"
    assert "kill switch" in run.store.last("blocked")["message"]


def test_hourly_action_limit_blocks(harness):
    run = harness([[hyp("memory_leak", "checkout")]], policy=ActionPolicy(max_actions_per_hour=5))
    run.store.hourly = 5
    final = run.drive()
    assert run.cloud.calls == [] and final.values["outcome"] == "blocked"
    assert "rate limit" in run.store.last("executed")["message"]


def test_idempotency_ledger_reuses_a_finished_action(harness):
    run = harness([[hyp("memory_leak", "checkout")]], health={"frontend": [False, True], "checkout": [False, True]})
    run.store.ledger["incident:1:attempt:0:restart_service:checkout"] = {
        "status": "succeeded", "result": {"status": "succeeded", "effect": "done by an earlier delivery"}}
    final = run.drive()
    assert run.cloud.calls == []  # the redelivered step did not run the action twice
    assert final.values["action_result"]["reused"] is True
    assert final.values["outcome"] == "resolved"


def test_rejected_approval_takes_no_action(harness):
    run = harness([[hyp("disk_failure", "node-3", kind="node")]])
    waiting = run.drive()
    assert waiting.interrupts and run.store.approvals[0]["action"] == "send_to_repair"
    final = run.drive({"approved": False, "by": "alice"})
    assert run.cloud.calls == []
    assert final.values["outcome"] == "rejected" and run.store.incident["status"] == "escalated"


# ---------------------------------------------------------------- verification and retries

def test_verify_is_one_probe_per_run_and_pauses_between_probes(harness):
    run = harness([[hyp("memory_leak", "checkout")]], health={"checkout": [False, False, False, True]})
    final = run.drive()
    assert final.values["outcome"] == "resolved"
    assert run.pauses.count(("verify",)) == 3  # the first check and two re-checks, each its own run
    # the alert's component is looked at before acting (is the symptom still there?) and, once the target
    # is well, again: the symptom must be gone there too
    # the diagnosed root is probed too before acting (a healthy one is not what keeps the symptom going)
    assert run.tools.telemetry.probed == ["frontend"] + ["checkout"] * 4 + ["frontend"]
    assert final.values["verifying"]["checks"] == 3


def test_failed_verification_moves_to_the_next_hypothesis(harness):
    run = harness([[hyp("memory_leak", "checkout", confidence=0.8), hyp("cpu_saturation", "cart", confidence=0.1)]],
                  health={"checkout": False})
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "checkout"), ("scale_out", "cart")]
    assert final.values["outcome"] == "resolved" and final.values["attempt"] == 1
    # 30 s deadline, a probe every 10 s: gave up on checkout after the deadline, not after a sleep
    assert run.tools.telemetry.probed.count("checkout") == 1 + 3  # the root check before acting, then verify


def test_a_healthy_wrong_target_does_not_close_the_incident_while_the_alert_symptom_persists(harness):
    # rollback on payments "works" (payments is healthy) but the alerted frontend still fails: that was not it
    run = harness([[hyp("bad_deploy", "payments", confidence=0.7, evidence=[deployed("payments")]),
                    hyp("memory_leak", "frontend", confidence=0.3)]],
                  policy=ActionPolicy(verify_timeout_s=300, verify_interval_s=10),
                  health={"payments": [False, True], "frontend": [False, False, False, False, True]})
    final = run.drive()
    assert run.cloud.calls == [("rollback", "payments"), ("restart_service", "frontend")]
    assert final.values["outcome"] == "resolved" and final.values["plan"]["target"] == "frontend"
    first = [e for e in run.store.events if e["kind"] == "verified"][0]
    assert "frontend still unhealthy though payments is healthy" in first["message"]
    # given up once the rollback's settle time (60 s) had passed, not at the 300 s deadline
    assert run.tools.telemetry.probed.count("payments") == 1 + 3


def test_verification_ends_after_the_actions_settle_time_not_the_whole_window(harness):
    run = harness([[hyp("memory_leak", "checkout", confidence=0.8), hyp("cpu_saturation", "cart", confidence=0.1)]],
                  policy=ActionPolicy(verify_timeout_s=600, verify_interval_s=10),
                  health={"checkout": False})
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "checkout"), ("scale_out", "cart")]
    assert final.values["outcome"] == "resolved"
    assert run.tools.telemetry.probed.count("checkout") == 1 + 3  # 30 s settle for a restart at 10 s a probe, not 60
    assert "stopped 30s after the action: checkout still unhealthy" in run.store.events[
        [e["kind"] for e in run.store.events].index("verified")]["message"]


def test_a_node_only_fault_on_a_service_is_tried_after_a_hypothesis_whose_kind_fits(harness):
    ranking = [hyp("disk_failure", "payments", confidence=0.6), hyp("disk_failure", "node-3", kind="node", confidence=0.3)]
    run = harness([ranking], policy=ActionPolicy(approval_required_risk="critical", verify_timeout_s=30,
                                                 verify_interval_s=10))
    final = run.drive()
    assert run.cloud.calls == [("send_to_repair", "node-3")]
    assert final.values["outcome"] == "resolved"


def test_an_action_refused_as_not_applicable_does_not_use_up_an_attempt(harness):
    ranking = [hyp("upstream_timeout", "payments", confidence=0.6), hyp("memory_leak", "a", confidence=0.3),
               hyp("memory_leak", "b", confidence=0.1)]
    run = harness([ranking], cloud=Cloud(refuses={"shed_load"}),
                  policy=ActionPolicy(max_attempts=2, verify_timeout_s=30, verify_interval_s=10),
                  health={"a": False})
    final = run.drive()
    assert run.cloud.calls == [("shed_load", "payments"), ("restart_service", "a"), ("restart_service", "b")]
    assert final.values["outcome"] == "resolved"
    assert final.values["tried"][0].get("refused") is True
    assert run.tools.telemetry.probed.count("payments") == 1  # looked at before acting; nothing ran: nothing to verify


def test_escalates_after_max_attempts_with_what_was_tried(harness):
    ranking = [hyp("memory_leak", "a"), hyp("memory_leak", "b"), hyp("memory_leak", "c")]
    run = harness([ranking], policy=ActionPolicy(max_attempts=2, verify_timeout_s=0), health={"a": False, "b": False})
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "a"), ("restart_service", "b")]
    assert final.values["outcome"] == "escalated"
    closed = run.store.last("escalated")["message"]
    assert "2 attempt(s)" in closed and "restart_service on a" in closed


def test_an_action_that_raised_is_recorded_and_the_next_hypothesis_tried(harness):
    run = harness([[hyp("bad_deploy", "cart", evidence=[deployed("cart")]), hyp("memory_leak", "cart", confidence=0.2)]],
                  cloud=Cloud(fails={"rollback"}))
    final = run.drive()
    assert run.cloud.calls == [("rollback", "cart"), ("restart_service", "cart")]
    assert run.store.ledger["incident:1:attempt:0:rollback:cart"]["status"] == "failed"
    assert "RuntimeError" in run.store.events[[e["kind"] for e in run.store.events].index("executed")]["message"]
    assert final.values["outcome"] == "resolved"


# ---------------------------------------------------------------- blast radius

def test_many_dependents_raise_the_risk_into_approval(harness):
    edges = [["web", "cart"], ["api", "cart"], ["mobile", "api"]]
    run = harness([[hyp("bad_deploy", "cart", evidence=[deployed("cart")])]], edges=edges)
    waiting = run.drive()
    assert waiting.interrupts, "a rollback is medium risk; three dependents must make it need approval"
    planned = run.store.last("planned")["data"]
    assert planned["risk"] == "high"
    assert planned["blast"]["dependents"] == ["api", "mobile", "web"]
    assert run.cloud.calls == []


def test_blast_radius_refuses_an_action_that_leaves_too_little_capacity(harness):
    run = harness([[hyp("kernel_hang", "node-2", kind="node")]],
                  capacity=lambda step: {"healthy": 2, "total": 4})
    final = run.drive()
    assert run.cloud.calls == []
    assert final.values["outcome"] == "escalated"
    assert "would leave 1 of 4 healthy" in run.store.last("escalated")["message"]


# ---------------------------------------------------------------- the world moves on

def test_stale_approval_is_rechecked_and_closes_as_self_recovered(harness):
    remembered = []
    run = harness([[hyp("disk_failure", "node-3", kind="node")]], on_resolved=remembered.append,
                  health={"node-3": [False, True]})
    assert run.drive().interrupts
    final = run.drive({"approved": False, "stale": True, "by": "source", "comment": "alerts resolved"})
    assert run.cloud.calls == []
    assert final.values["outcome"] == "self_recovered" and run.store.incident["status"] == "resolved"
    assert "approval_stale" in run.store.kinds() and "checked" in run.store.kinds()
    assert remembered[0]["plan"] == {} and remembered[0]["outcome"] == "self_recovered"  # no action learned


def test_stale_approval_with_the_target_still_unhealthy_asks_again(harness):
    run = harness([[hyp("disk_failure", "node-3", kind="node")]], health={"node-3": False})
    run.drive()
    run.store.approvals[0]["status"] = "stale"  # what flows.note_resolved does in the database
    again = run.drive({"approved": False, "stale": True, "by": "source"})
    assert again.interrupts and run.cloud.calls == []
    assert [a["status"] for a in run.store.approvals] == ["stale", "pending"]  # asked again, as a new request
    assert again.interrupts[0].value["approval_id"] == 2
    run.drive({"approved": True, "by": "alice"})
    assert run.cloud.calls == [("send_to_repair", "node-3")]


def test_alerts_resolved_before_any_action_close_as_self_recovered(harness):
    run = harness([[hyp("memory_leak", "checkout")]], health={"frontend": True, "checkout": True, "node-1": True})
    run.store.source = {"firing": 0, "resolved": 2, "ended_at": "2026-11-30T17:00:00Z"}
    final = run.drive()
    assert run.cloud.calls == []
    assert final.values["outcome"] == "self_recovered"


def test_alerts_resolved_but_probe_disagrees_acts_anyway(harness):
    run = harness([[hyp("memory_leak", "checkout")]], health={"checkout": [False, False, True]})
    run.store.source = {"firing": 0, "resolved": 1}
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]
    assert final.values["outcome"] == "resolved"


# ---------------------------------------------------------------- the supervisor

def test_low_confidence_widens_the_observer_within_the_probe_budget(harness):
    weak = [hyp("memory_leak", "checkout", confidence=0.3)]
    run = harness([weak], policy=ActionPolicy(probe_budget=2))
    final = run.drive()
    assert len(run.scopes) == 3  # the first look and two wider ones, then the budget is spent
    first = DEFAULT_SCOPE
    assert run.scopes[1]["hops"] == first["hops"] + 1 and run.scopes[2]["minutes"] == first["minutes"] * 4
    decisions = [e for e in run.store.events if e["kind"] == "scheduled"]
    assert [d["data"]["next"] for d in decisions] == ["observe", "observe", "plan"]
    assert all(d["message"] for d in decisions)
    assert final.values["probes"] == 2


def test_close_hypotheses_get_a_targeted_probe_then_the_confident_one_is_acted_on(harness):
    close = [hyp("memory_leak", "checkout", confidence=0.45), hyp("cpu_saturation", "cart", confidence=0.4)]
    clear = [hyp("cpu_saturation", "cart", confidence=0.8), hyp("memory_leak", "checkout", confidence=0.1)]
    run = harness([close, clear])
    run.drive()
    assert run.scopes[1]["focus"] == ["cart", "checkout"]
    assert "targeted probe" in [e for e in run.store.events if e["kind"] == "scheduled"][0]["message"]
    assert run.cloud.calls == [("scale_out", "cart")]


def _component(*, telemetry: bool, metrics: int = 0) -> dict[str, Any]:
    return {"kind": "service", "telemetry": telemetry, "metrics": [{"z": 3.0}] * metrics, "logs": []}


def test_no_telemetry_in_the_neighbourhood_acts_without_widening(harness):
    weak = [hyp("kernel_hang", "node-1", kind="node", confidence=0.2)]
    run = harness([weak], policy=ActionPolicy(probe_budget=2), looks=[{"node-1": _component(telemetry=False)}])
    final = run.drive()
    assert len(run.scopes) == 1
    decision = [e for e in run.store.events if e["kind"] == "scheduled"]
    assert [d["data"]["next"] for d in decision] == ["plan"] and "no telemetry" in decision[0]["message"]
    assert final.values["probes"] == 0


def test_widening_stops_when_a_wider_look_adds_nothing(harness):
    weak = [hyp("memory_leak", "checkout", confidence=0.3)]
    same = {"checkout": _component(telemetry=True, metrics=1), "cart": _component(telemetry=True)}
    run = harness([weak], policy=ActionPolicy(probe_budget=3), looks=[same])
    run.drive()
    decisions = [e for e in run.store.events if e["kind"] == "scheduled"]
    assert [d["data"]["next"] for d in decisions] == ["observe", "plan"]
    assert "found nothing" in decisions[-1]["message"]


def test_widening_goes_on_while_each_look_finds_more(harness):
    weak = [hyp("memory_leak", "checkout", confidence=0.3)]
    first = {"checkout": _component(telemetry=True, metrics=1)}
    wider = {**first, "cart": _component(telemetry=True, metrics=1)}
    widest = {**wider, "db": _component(telemetry=True, metrics=2)}
    run = harness([weak], policy=ActionPolicy(probe_budget=2), looks=[first, wider, widest])
    run.drive()
    decisions = [e for e in run.store.events if e["kind"] == "scheduled"]
    assert [d["data"]["next"] for d in decisions] == ["observe", "observe", "plan"]
    assert "budget spent" in decisions[-1]["message"]


# ---------------------------------------------------------------- which component to act on first

def test_an_unhealthy_host_is_acted_on_before_the_services_it_hosts(harness):
    ranking = [hyp("cpu_saturation", "checkout", confidence=0.5), hyp("cpu_saturation", "search", confidence=0.3),
               hyp("cpu_saturation", "node-1", kind="node", confidence=0.2)]
    run = harness([ranking], health={"node-1": [False, True]})
    final = run.drive(alert={**ALERT, "service": "checkout"})  # checkout's instance on node-1 alerted
    assert run.cloud.calls == [("migrate", "node-1")]
    assert final.values["outcome"] == "resolved"
    assert "node-1 is unhealthy itself, which explains checkout" in run.store.last("planned")["message"]
    assert final.values["health_checks"] == {"checkout": False, "node-1": False}


def test_a_healthy_host_leaves_the_diagnosis_order_alone(harness):
    ranking = [hyp("cpu_saturation", "checkout", confidence=0.5), hyp("cpu_saturation", "node-1", kind="node",
                                                                       confidence=0.2)]
    run = harness([ranking], health={"node-1": True})
    run.drive(alert={**ALERT, "service": "checkout"})
    assert run.cloud.calls == [("scale_out", "checkout")]
    assert run.tools.telemetry.probed.count("node-1") == 1  # the host was asked once, before acting


def test_a_host_is_probed_once_and_the_order_holds_across_attempts(harness):
    # node-1 is sick and hosts checkout (placement); the node action fails to help, then checkout is next
    ranking = [hyp("memory_leak", "checkout", confidence=0.5), hyp("kernel_hang", "node-1", kind="node", confidence=0.3)]
    run = harness([ranking], edges=[], health={"node-1": False},
                  policy=ActionPolicy(verify_timeout_s=30, verify_interval_s=10))
    final = run.drive(alert={**ALERT, "service": "checkout"})
    assert run.cloud.calls == [("reboot", "node-1"), ("restart_service", "checkout")]
    assert final.values["health_checks"] == {"checkout": False, "node-1": False}
    # the symptom and the host are probed before the first plan; then the verify probes
    assert run.tools.telemetry.probed[:2] == ["checkout", "node-1"]
    assert run.tools.telemetry.probed.count("node-1") == 1 + 3  # host check once, then three verify probes


def test_a_node_that_hosts_no_diagnosed_service_is_not_probed(harness):
    ranking = [hyp("memory_leak", "checkout", confidence=0.5), hyp("kernel_hang", "node-9", kind="node", confidence=0.3)]
    run = harness([ranking], health={"node-9": False})
    run.drive(alert={**ALERT, "service": "checkout"})
    assert run.cloud.calls == [("restart_service", "checkout")]
    assert "node-9" not in run.tools.telemetry.probed


def test_a_bad_change_with_nothing_to_roll_back_restarts_instead(harness):
    run = harness([[hyp("bad_deploy", "cart")]])
    run.drive()
    assert run.cloud.calls == [("restart_service", "cart")]
    assert "no change event on it to roll back" in run.store.last("planned")["message"]


# ---------------------------------------------------------------- a symptom that cleared before any action

def test_a_symptom_gone_before_the_first_action_closes_without_acting(harness):
    # the source still says firing (its resolved notice lags), but the alert's component and the diagnosed one are well
    remembered = []
    run = harness([[hyp("cpu_saturation", "checkout")]], health={"frontend": True, "checkout": True, "node-1": True},
                  on_resolved=remembered.append)
    final = run.drive()
    assert run.cloud.calls == []
    assert final.values["outcome"] == "self_recovered"
    assert "has cleared before any action" in run.store.last("checked")["message"]
    assert remembered[0]["plan"] == {}  # nothing is learned from an action that never ran


def test_a_cleared_alert_symptom_with_the_diagnosed_component_still_sick_acts(harness):
    run = harness([[hyp("memory_leak", "checkout")]], health={"frontend": True, "checkout": [False, False, True]})
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]
    assert final.values["outcome"] == "resolved"
    assert "still unhealthy: continuing" in run.store.last("checked")["message"]


def test_no_source_that_can_tell_is_not_taken_for_healthy(harness):
    run = harness([[hyp("memory_leak", "checkout")]], health={"frontend": None})
    run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]
    assert "checked" not in run.store.kinds()


def test_a_diagnosed_root_that_probes_healthy_now_is_skipped(harness):
    # catalog's anomaly is in the window (a fault another incident fixed); the symptom on search persists
    ranking = [hyp("memory_leak", "catalog", confidence=0.5),
               hyp("bad_deploy", "search", confidence=0.3, evidence=[deployed("search")])]
    run = harness([ranking], health={"catalog": True})
    final = run.drive(alert={**ALERT, "service": "search"})
    assert run.cloud.calls == [("rollback", "search")]  # the alert's own component is not probed for this
    assert final.values["outcome"] == "resolved"
    assert "skipped catalog: healthy when probed" in run.store.last("planned")["message"]


def test_every_diagnosed_root_healthy_escalates_instead_of_guessing(harness):
    ranking = [hyp("memory_leak", "catalog", confidence=0.5), hyp("cpu_saturation", "cart", confidence=0.3)]
    run = harness([ranking], health={"catalog": True, "cart": True})
    final = run.drive()
    assert run.cloud.calls == []
    assert final.values["outcome"] == "escalated"
    assert "probed healthy now, so not what keeps frontend unhealthy: catalog, cart" in run.store.last("escalated")["message"]


def test_after_a_failed_try_a_caller_of_a_sick_dependency_is_not_acted_on(harness):
    ranking = [hyp("memory_leak", "checkout", confidence=0.5), hyp("cpu_saturation", "frontend", confidence=0.3)]
    run = harness([ranking], edges=[["frontend", "payments"]], health={"checkout": False, "payments": False})
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]  # frontend's latency is payments': not guessed at
    assert final.values["outcome"] == "escalated"
    assert "symptoms borrowed from a sick dependency: frontend (calls unhealthy payments)" in run.store.last(
        "escalated")["message"]


def test_the_first_attempt_trusts_the_diagnosis_over_a_sick_dependency(harness):
    run = harness([[hyp("cpu_saturation", "frontend")]], edges=[["frontend", "payments"]], health={"payments": False})
    run.drive()
    assert run.cloud.calls == [("scale_out", "frontend")]
    assert "payments" not in run.tools.telemetry.probed


def test_a_guess_is_taken_first_but_never_as_a_second_attempt(harness):
    ranking = [hyp("memory_leak", "checkout", confidence=0.5), hyp("bad_deploy", "cart", confidence=0.3)]
    run = harness([ranking], health={"checkout": False})
    final = run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]  # not a blind restart of cart after that failed
    assert final.values["outcome"] == "escalated"
    assert "no named cause to act on after a failed try: cart" in run.store.last("escalated")["message"]


# ---------------------------------------------------------------- the diagnosis a verified fix confirms

def test_a_fix_verified_on_a_later_hypothesis_becomes_the_incidents_root_cause(harness):
    # catalog's anomaly is a past one (it probes healthy): the rollback on search clears the symptom
    ranking = [hyp("memory_leak", "catalog", confidence=0.5),
               hyp("bad_deploy", "search", confidence=0.3, evidence=[deployed("search")])]
    run = harness([ranking], health={"catalog": True})
    final = run.drive(alert={**ALERT, "service": "search"})
    saved = run.store.incident["hypotheses"]
    assert [(h["root_cause"], h["component"], h["rank"]) for h in saved] == [
        ("bad_deploy", "search", 0), ("memory_leak", "catalog", 1)]
    assert saved[0]["evidence"][0]["kind"] == "verified" and saved[0]["confirmed_by"] == "rollback"
    assert final.values["hypotheses"][0]["component"] == "search"  # what episode memory is given, too
    assert "root cause revised to bad_deploy on search" in run.store.last("diagnosis_revised")["message"]


def test_a_fix_after_a_failed_try_revises_the_root_cause_to_what_it_fixed(harness):
    ranking = [hyp("memory_leak", "checkout", confidence=0.5), hyp("cpu_saturation", "frontend", confidence=0.3)]
    run = harness([ranking], health={"checkout": False, "frontend": [False, False, True]})
    run.drive()
    assert run.cloud.calls == [("restart_service", "checkout"), ("scale_out", "frontend")]
    assert run.store.incident["hypotheses"][0]["component"] == "frontend"


def test_the_top_hypothesis_fixed_leaves_the_ranking_as_diagnosed(harness):
    ranking = [hyp("memory_leak", "checkout", confidence=0.5), hyp("cpu_saturation", "frontend", confidence=0.3)]
    run = harness([ranking])
    run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]
    assert run.store.incident["hypotheses"] == ranking
    assert "diagnosis_revised" not in run.store.kinds()


def test_an_escalated_incident_keeps_the_diagnosis_it_had(harness):
    ranking = [hyp("memory_leak", "catalog", confidence=0.5), hyp("cpu_saturation", "cart", confidence=0.3)]
    run = harness([ranking], health={"catalog": True, "cart": False})
    final = run.drive()
    assert final.values["outcome"] == "escalated"
    assert run.store.incident["hypotheses"] == ranking
    assert "diagnosis_revised" not in run.store.kinds()


def test_a_fix_that_addressed_the_runner_up_cause_names_that_cause(harness):
    # "network_delay" with no network signal of its own names a symptom: the restart acts on memory_leak
    seen = {**hyp("network_delay", "checkout"), "alternatives": ["memory_leak", "cpu_saturation"]}
    run = harness([[seen]])
    run.drive()
    assert run.cloud.calls == [("restart_service", "checkout")]
    top = run.store.incident["hypotheses"][0]
    assert (top["root_cause"], top["fault"], top["component"]) == ("memory_leak", "memory_leak", "checkout")
    assert top["alternatives"][0] == "network_delay"


def test_a_node_taken_out_of_rotation_is_not_a_recovery_while_the_alerts_symptom_stays(harness):
    # the disk on node-5 is bad, but frontend (on node-1) is slow for another reason: its own CPU
    ranking = [hyp("disk_failure", "node-5", kind="node", confidence=0.5),
               hyp("cpu_saturation", "frontend", confidence=0.3)]
    run = harness([ranking], health={"frontend": [False, False, False, False, True]},
                  policy=ActionPolicy(approval_required_risk="critical", verify_timeout_s=30, verify_interval_s=10))
    final = run.drive()
    assert run.cloud.calls == [("send_to_repair", "node-5"), ("scale_out", "frontend")]
    assert final.values["outcome"] == "resolved"
    assert "frontend still unhealthy" in run.store.events[[e["kind"] for e in run.store.events].index("verified")]["message"]


def test_a_node_taken_out_of_rotation_for_its_own_alert_counts_as_recovered(harness):
    alert = {**ALERT, "name": "NodeDiskIOErrors", "service": None, "node": "node-5", "labels": {"job": "node"}}
    run = harness([[hyp("disk_failure", "node-5", kind="node")]], health={"node-5": False},
                  policy=ActionPolicy(approval_required_risk="critical", verify_timeout_s=30, verify_interval_s=10))
    final = run.drive(alert=alert)
    assert run.cloud.calls == [("send_to_repair", "node-5")]
    assert final.values["outcome"] == "resolved"
