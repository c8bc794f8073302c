"""A node and the services on it: which one explains the other's symptoms (rank level, cases built as the sim does).

The case comes from the simulator's own telemetry (``sim.telemetry.Telemetry``) over a three-node fleet
held in memory, and the alert is labelled as ``sim.alerts.to_alertmanager`` labels it (a node alert
carries the first service on the node and ``job="node"``).
"""

from __future__ import annotations

from typing import Any

from agents.diagnoser import SIGNATURES
from agents.diagnosis.case import gather_case
from agents.diagnosis.evidence import absence_evidence, metric_evidence
from agents.diagnosis.faults import fault_scores
from agents.diagnosis.rank import explanations, rank_case
from sim.faults import FAULT_KINDS, Fault
from sim.fleet import Node
from sim.telemetry import Telemetry

NOW = 1_800_000_000.0
ONSET = NOW - 30  # the sim injects a fault onset_lead_s (30 s) before its alert fires


class _Fleet:
    """What ``sim.telemetry.Telemetry`` reads of a ``sim.fleet.Fleet``, without a cloud behind it."""

    def __init__(self, placed: dict[str, list[int]] | None = None, *, nodes: int = 3,
                 dependencies: dict[str, tuple[str, ...]] | None = None) -> None:
        self.nodes = [Node(id=f"sim-7-node-0{i}", instance_id=f"i-0{i}", cluster="sim-7", sku="gp", instance_type="m5.large",
                           az="us-east-1a", private_ip=f"10.0.1.{i}", age_days=30) for i in range(1, nodes + 1)]
        placed = placed or {"search": [1, 2], "checkout": [0, 1], "catalog": [2, 0], "auth": [1, 2]}
        self.dependencies = dict(dependencies or {})
        for service, where in placed.items():
            for i in where:
                self.nodes[i].services.append(service)
        self.services = {s: [self.nodes[i].id for i in where] for s, where in placed.items()}
        self.releases = {s: "v1.4.0" for s in placed}
        self.faults: list[Fault] = []

    def now(self) -> float:
        return NOW

    def node(self, ref: str) -> Node:
        return next(n for n in self.nodes if ref in (n.id, n.instance_id, n.private_ip))

    def faults_at(self, t: float) -> list[Fault]:
        return [f for f in self.faults if f.started_at <= t and (f.resolved_at is None or t < f.resolved_at)]

    def all_faults(self) -> list[Fault]:
        return list(self.faults)


class _Telemetry:
    """The Telemetry protocol over the sim's telemetry, plus the changes a deploy tool would report."""

    def __init__(self, fleet: _Fleet, changes: list[dict[str, Any]], *, topology: bool = False) -> None:
        self.sim, self._changes = Telemetry(fleet, seed=0), changes  # type: ignore[arg-type]
        if topology:  # the call graph and every replica's host, as the sim's full telemetry answers them
            self.topology = self.sim.topology
            self.traces = self.sim.traces

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        return self.sim.metrics(target, minutes=minutes)

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        return self.sim.logs(target, minutes=minutes)

    def changes(self, *, minutes: int = 60) -> list[dict[str, Any]]:
        return list(self._changes)


def _diagnose(kind: str, target: str, *, changes: list[dict[str, Any]] | None = None,
              recalled: list[dict[str, Any]] | None = None, fleet: _Fleet | None = None,
              alert_service: str | None = None, phrases: bool = True) -> list[dict[str, Any]]:
    """Inject ``kind`` on ``target`` and rank; ``alert_service`` makes a service on the node (or a caller) alert;
    ``phrases=False`` leaves the logs out of the context the phrase table reads (a wording it does not know)."""
    topology = fleet is not None
    fleet = fleet or _Fleet()
    spec = FAULT_KINDS[kind]
    node = target if spec.level == "node" else fleet.services[target][0]
    fleet.faults.append(Fault(id="f-1", kind=kind, level=spec.level, target=target,
                              node=node if spec.level == "node" else None,
                              service=None if spec.level == "node" else target, started_at=ONSET,
                              root_cause=spec.root_cause, fixing_actions=spec.fixes))
    telemetry = _Telemetry(fleet, changes or [], topology=topology)
    service = alert_service or (fleet.node(node).services[0] if spec.level == "node" else target)
    name = spec.cascade_alert if alert_service else spec.alertname
    job = "node" if spec.level == "node" and not alert_service else service
    where = fleet.services[service][0] if alert_service and spec.level == "service" else node
    alert = {"name": name, "service": service, "node": where, "severity": spec.severity, "starts_at": ONSET,
             "labels": {"alertname": name, "job": job, "node": where, "service": service},
             "summary": spec.summary.format(node=node, service=service)}
    case = gather_case(telemetry, alert)
    context = "\n".join([alert["name"], alert["summary"], *(telemetry.logs(node, minutes=30)[-400:] if phrases else [])])
    return rank_case(case, alert=alert, recalled=recalled or [], context=context, signatures=SIGNATURES)


def test_a_hung_node_explains_the_service_on_it_even_after_a_deploy_of_that_service():
    # the demo's NodeHeartbeatMissing {service="search", node="sim-7-node-02"}: search was also
    # deployed ten minutes ago and a past incident blamed a bad deploy of search
    deploy = {"component": "search", "kind": "deploy", "at": NOW - 600, "detail": "search v1.4.0 -> v1.5.0"}
    past = {"root_cause": "bad_deploy", "component": "search", "incident_id": 7}
    ranked = _diagnose("kernel_hang", "sim-7-node-02", changes=[deploy], recalled=[past])
    best = ranked[0]
    assert (best["component"], best["component_kind"], best["fault"]) == ("sim-7-node-02", "node", "kernel_hang")
    assert best["confidence"] > next(h["confidence"] for h in ranked if h["component"] == "search")
    assert any(e.get("signal") == "liveness" for e in best["evidence"])


def test_a_partitioned_node_is_typed_from_its_logs_not_from_the_latency_through_it():
    best = _diagnose("network_partition", "sim-7-node-02")[0]
    assert (best["component"], best["fault"]) == ("sim-7-node-02", "network_partition")


def test_a_silent_node_is_hung_when_its_cpu_spins_and_cut_off_when_it_idles():
    # no phrase to go by: the node stopped reporting either way, its CPU moved up (soft lockup) or down (no work)
    for kind in ("kernel_hang", "network_partition"):
        best = _diagnose(kind, "sim-7-node-02", phrases=False)[0]
        assert (best["component"], best["fault"]) == ("sim-7-node-02", kind), kind
    silent = {"kind": "metric", "signal": "liveness", "z": 20.0}
    spinning = {"kind": "metric", "signal": "cpu", "z": 8.0, "before": 35.0, "after": 99.0}
    idle = {**spinning, "after": 6.0}
    assert max(fault_scores([silent, spinning], component_kind="node").items(), key=lambda x: x[1])[0] == "kernel_hang"
    assert max(fault_scores([silent, idle], component_kind="node").items(), key=lambda x: x[1])[0] == "network_partition"
    # a node that still reports keeps a busy CPU as CPU saturation
    assert "kernel_hang" not in fault_scores([spinning], component_kind="node")


def test_a_service_fault_is_not_pinned_on_the_node_that_carries_it():
    for kind in ("bad_deploy", "memory_leak", "cpu_saturation"):
        best = _diagnose(kind, "search")[0]
        assert (best["component"], best["fault"]) == ("search", kind), kind


def test_liveness_loss_and_silence_are_evidence():
    base = [(NOW - 600 + 15 * i, 1.0) for i in range(38)]
    hung = metric_evidence("n1", "heartbeat", [*base, (ONSET + 5, 0.0), (ONSET + 20, 0.0)], split_at=ONSET)
    assert hung is not None and hung["signal"] == "liveness" and hung["z"] >= 10
    half = metric_evidence("svc", "up", [*base, (ONSET + 5, 0.5), (ONSET + 20, 0.5)], split_at=ONSET)
    assert half is not None and half["z"] < hung["z"]
    assert metric_evidence("n1", "heartbeat", [*base, (ONSET + 5, 1.0)], split_at=ONSET) is None
    silent = absence_evidence("n1", {"cpu": [(t, 30.0) for t, _ in base]}, split_at=ONSET)
    assert silent is not None and silent["signal"] == "liveness" and "no data" in silent["detail"]
    assert absence_evidence("n1", {"cpu": [*base, (ONSET + 5, 30.0)]}, split_at=ONSET) is None
    # a dead node's latency and error symptoms do not vote for its fault type; liveness does
    scores = fault_scores([hung, {"kind": "metric", "signal": "latency", "z": 900.0}], component_kind="node")
    assert "network_delay" not in scores and scores["kernel_hang"] > 0


def test_explanations_follow_the_kinds_that_moved():
    def comp(kind: str, *signals: str) -> dict[str, Any]:
        return {"kind": kind, "metrics": [{"signal": s, "z": 5.0} for s in signals], "logs": []}

    dead = {"placement": {"api": "n1"}, "components": {"api": comp("service", "latency"), "n1": comp("node", "liveness")}}
    assert explanations(dead) == {"api": "n1"}
    loaded = {"placement": {"api": "n1"}, "components": {"api": comp("service", "cpu", "latency"), "n1": comp("node", "cpu")}}
    assert explanations(loaded) == {"n1": "api"}
    apart = {"placement": {"api": "n1"}, "components": {"api": comp("service", "latency"), "n1": comp("node", "memory")}}
    assert explanations(apart) == {}


# the bench fleet's shape: six nodes, four services with two replicas each, so most nodes run one service
SIX = {"checkout": [0, 5], "payments": [1, 2], "catalog": [3, 4], "search": [0, 5]}
CALLS = {"checkout": ("payments", "catalog"), "search": ("catalog",)}


def _six() -> _Fleet:
    return _Fleet(SIX, nodes=6, dependencies=CALLS)


def _accepted(kind: str, best: dict[str, Any]) -> bool:
    return best["fault"] in FAULT_KINDS[kind].accepted_labels


def test_a_node_fault_on_a_single_service_node_is_put_on_the_node_not_on_its_service():
    # payments runs on node-02 and node-03: a fault of node-02 shows on payments' view of node-02 only,
    # while a payments fault would follow payments to both nodes
    for kind in ("cpu_steal", "node_memory_pressure", "nic_degradation", "kernel_hang", "disk_failure"):
        for alerted in (None, "payments"):  # the node alerts, or payments on it alerts (a cascade)
            best = _diagnose(kind, "sim-7-node-02", fleet=_six(), alert_service=alerted)[0]
            assert (best["component"], best["component_kind"]) == ("sim-7-node-02", "node"), (kind, alerted, best)
            assert _accepted(kind, best), (kind, alerted, best["fault"])


def test_a_node_fault_every_service_on_the_node_shows_is_put_on_the_node():
    # node-01 runs checkout and search: both show the machine's memory shortage
    best = _diagnose("node_memory_pressure", "sim-7-node-01", fleet=_six(), alert_service="checkout")[0]
    assert (best["component"], best["fault"]) == ("sim-7-node-01", "node_memory_pressure")


def test_a_service_fault_stays_on_the_service_in_the_replicated_fleet():
    for kind in ("cpu_saturation", "memory_leak", "traffic_surge", "connection_leak", "bad_deploy"):
        for alerted in (None, "checkout"):  # payments alerts, or checkout (its caller) does
            best = _diagnose(kind, "payments", fleet=_six(), alert_service=alerted,
                             changes=[{"component": "payments", "kind": "deploy", "at": ONSET - 60, "detail": "v2"}]
                             if kind == "bad_deploy" else None)[0]
            assert best["component"] == "payments", (kind, alerted, best)
            assert _accepted(kind, best), (kind, alerted, best["fault"])


def test_traffic_surge_and_cpu_saturation_are_told_apart():
    assert _diagnose("traffic_surge", "search")[0]["fault"] == "overload"
    assert _diagnose("cpu_saturation", "search")[0]["fault"] == "cpu_saturation"


def test_explanations_read_every_replica_host_from_the_edges():
    def comp(kind: str, *signals: str, after: float = 50.0) -> dict[str, Any]:
        return {"kind": kind, "logs": [],
                "metrics": [{"signal": s, "metric": s, "z": 5.0, "before": 10.0, "after": after} for s in signals]}

    # the placement names n1 only; the edges say api also runs on n2, which lost its heartbeat
    dead = {"placement": {"api": "n1"}, "edges": [["api", "n1"], ["api", "n2"]],
            "components": {"api": comp("service", "latency"), "n1": comp("node"), "n2": comp("node", "liveness")}}
    assert explanations(dead) == {"api": "n2"}
    # the machine's CPU moved on one host of api only, and api's view moved no further: the machine did it
    steal = {"placement": {"api": "n1"}, "edges": [["api", "n1"], ["api", "n2"]],
             "components": {"api": comp("service", "cpu", "latency"), "n1": comp("node", "cpu"), "n2": comp("node")}}
    assert explanations(steal) == {"api": "n1"}
    # api moved much further than its machine: it loads the machine
    busy = {"placement": {"api": "n1"}, "edges": [["api", "n1"], ["api", "n2"]],
            "components": {"api": comp("service", "cpu", "latency", after=90.0), "n1": comp("node", "cpu"), "n2": comp("node")}}
    assert explanations(busy) == {"n1": "api"}
    # every host of api moved: api carries its load to each machine
    both = {"placement": {"api": "n1"}, "edges": [["api", "n1"], ["api", "n2"]],
            "components": {"api": comp("service", "cpu"), "n1": comp("node", "cpu"), "n2": comp("node", "cpu")}}
    assert explanations(both) == {"n1": "api", "n2": "api"}
    # more requests arriving come from callers, not from the machine
    demand = {"placement": {"api": "n1"}, "edges": [["api", "n1"], ["api", "n2"]],
              "components": {"api": comp("service", "cpu", "traffic"), "n1": comp("node", "cpu"), "n2": comp("node")}}
    assert explanations(demand) == {"n1": "api"}
    # two services on n1 both show n1's memory, one of them everywhere it runs: still the shared machine
    shared = {"edges": [["api", "n1"], ["web", "n1"], ["web", "n2"]],
              "components": {"api": comp("service", "memory"), "web": comp("service", "memory"),
                             "n1": comp("node", "memory"), "n2": comp("node", "memory")}}
    assert explanations(shared)["api"] == "n1" and explanations(shared)["web"] == "n1"


def test_an_explained_victim_never_outranks_what_explains_it():
    from agents.diagnosis.rank import component_scores

    metric = {"signal": "latency", "metric": "latency", "z": 40.0, "before": 100.0, "after": 3000.0}
    case = {"edges": [["web", "api"], ["api", "n1"], ["api", "n2"]], "alert_components": ["n1"],
            "components": {"api": {"kind": "service", "logs": [], "metrics": [metric]},
                           "web": {"kind": "service", "logs": [], "metrics": []},
                           "n1": {"kind": "node", "logs": [], "metrics": [{**metric, "signal": "liveness", "z": 20.0}]},
                           "n2": {"kind": "node", "logs": [], "metrics": []}},
            # web's calls into api slowed: evidence only api can collect, not its dead machine
            "traces": [{**metric, "kind": "trace", "edge": ["web", "api"]}]}
    final, anomaly = component_scores(case)
    assert anomaly["api"] < anomaly["n1"] and final["n1"] > final["api"]


def test_with_one_known_host_the_series_both_report_decide():
    # no topology: the alert's labels are all that place the service on the node
    def comp(kind: str, after: float) -> dict[str, Any]:
        return {"kind": kind, "logs": [], "metrics": [
            {"signal": "cpu", "metric": "cpu_steal", "z": 20.0, "before": 2.0, "after": after},
            {"signal": "latency", "metric": "latency_p99_ms", "z": 20.0, "before": 200.0, "after": 2500.0}]}

    steal = {"placement": {"api": "n1"}, "components": {"api": comp("service", 40.0), "n1": comp("node", 40.0)}}
    assert explanations(steal) == {"api": "n1"}  # the service's view moved no further than the machine's
    busy = {"placement": {"api": "n1"}, "components": {"api": comp("service", 90.0), "n1": comp("node", 40.0)}}
    assert explanations(busy) == {"n1": "api"}
    best = _diagnose("cpu_steal", "sim-7-node-02", fleet=None)[0]  # the sim's telemetry without a topology
    assert (best["component"], best["component_kind"]) == ("sim-7-node-02", "node")


def test_phrases_of_a_release_or_a_process_do_not_type_a_machines_fault():
    drops = {"kind": "metric", "signal": "network", "z": 20.0}
    scores = fault_scores([drops], component_kind="node", phrase_votes={"bad_deploy": 6, "connection_leak": 2})
    assert "bad_deploy" not in scores and "connection_leak" not in scores
    assert max(scores, key=lambda f: scores[f]) == "network_partition"
    # on a service the same phrases still vote
    assert "bad_deploy" in fault_scores([drops], component_kind="service", phrase_votes={"bad_deploy": 6})


class _NoHeartbeatSeries:
    """A node whose CPU fell to idle at ONSET and that exports no heartbeat series: only the alert says it went silent."""

    def metrics(self, target, *, minutes=15):
        if target != "n1":
            return {}
        return {"cpu": [(t, 6.0 if t >= ONSET else 40.0 + (t // 15) % 4) for t in range(int(NOW - 1200), int(NOW) + 1, 15)]}

    def logs(self, target, *, minutes=15):
        return []


def test_a_node_the_alert_says_went_silent_is_typed_by_its_cpu_falling():
    alert = {"name": "NodeHeartbeatMissing", "node": "n1", "service": None, "labels": {"job": "node"},
             "summary": "n1 stopped reporting heartbeats", "starts_at": ONSET}
    case = gather_case(_NoHeartbeatSeries(), alert)
    assert case["components"]["n1"]["fell"][0]["metric"] == "cpu"
    best = rank_case(case, alert=alert, context="NodeHeartbeatMissing")[0]
    assert (best["component"], best["fault"]) == ("n1", "network_partition")
