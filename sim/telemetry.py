"""Telemetry of the simulated fleet: per-node/per-service metrics and logs, derived from the faults.

Why derived and seeded: every value is a pure function of (seed, target, timestamp, the faults
active at that timestamp), so two probes of the same window agree, a test can rely on a fault
showing up, and a resolved fault stays visible in the past part of a window (as real history
would). Log windows mix each fault's signature lines into ordinary noise, including unrelated
WARN/ERROR lines, so a diagnoser has to pick the evidence out rather than read a label.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sim import paraphrase
from sim.faults import FAULT_KINDS, Fault
from sim.paraphrase import Wording

if TYPE_CHECKING:
    from sim.fleet import Fleet, Node

METRICS = ("cpu", "mem", "disk_io_errors", "heartbeat", "latency_p99_ms", "error_rate", "cpu_steal", "net_rx_drops",
           "requests_per_s", "client_latency_p99_ms", "client_error_rate")

# A target is unhealthy when its latest sample crosses any of these; faults always cross one.
THRESHOLDS = {
    "cpu": 92.0,
    "mem": 92.0,
    "disk_io_errors": 5.0,
    "latency_p99_ms": 1500.0,
    "error_rate": 0.05,
    "cpu_steal": 20.0,
    "net_rx_drops": 50.0,
}
# how a service-level fault looks to the services that call it: (p99 latency range ms, error share range)
CALLEE_SYMPTOMS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "memory_leak": ((1600.0, 2600.0), (0.01, 0.03)),
    "bad_deploy": ((300.0, 700.0), (0.08, 0.2)),
    "bad_config": ((300.0, 700.0), (0.07, 0.18)),
    "cpu_saturation": ((2000.0, 4500.0), (0.02, 0.05)),
    "traffic_surge": ((1700.0, 3200.0), (0.02, 0.05)),
    "connection_leak": ((1800.0, 4000.0), (0.02, 0.06)),
}
# how metrics of a service combine over its replicas: what a service dashboard shows
_SUM = {"disk_io_errors", "net_rx_drops", "requests_per_s"}
_MAX = {"mem", "latency_p99_ms", "client_latency_p99_ms", "cpu_steal"}

_NODE_NOISE = (
    "systemd[1]: Started Session {n} of user ec2-user.",
    "systemd[1]: Starting Daily apt download activities...",
    "CRON[{n}]: (root) CMD (/usr/lib/sa/sa1 1 1)",
    "sshd[{n}]: Accepted publickey for ec2-user from 10.0.{k}.{n4} port {n} ssh2",
    "amazon-ssm-agent[{n}]: INFO [MessageGatewayService] listening for messages",
    'node_exporter[{n}]: level=info collector=filesystem msg="scrape ok" duration_seconds=0.0{k}',
    "chronyd[{n}]: Selected source 169.254.169.123",
    "kernel: [{n}.{n4}] IPv6: ADDRCONF(NETDEV_CHANGE): eth1: link becomes ready",
    "dhclient[{n}]: bound to 10.0.{k}.{n4} -- renewal in {n} seconds.",
    "systemd-logind[{n}]: New session {n} of user ec2-user.",
    "amazon-ssm-agent[{n}]: WARN [ssm-agent-worker] ssm message ack deadline exceeded, retrying",
)

_SERVICE_NOISE = (
    "{svc}[{n}]: INFO GET /api/{svc}/items 200 {k}{n4}ms trace_id={hex}",
    "{svc}[{n}]: INFO POST /api/{svc} 201 {k}{k}ms trace_id={hex}",
    "{svc}[{n}]: INFO GET /healthz 200 1ms",
    "{svc}[{n}]: DEBUG cache hit ratio=0.9{k} entries={n}",
    "{svc}[{n}]: INFO processed batch size={n4} in {k}{n4}ms",
    "{svc}[{n}]: INFO connection pool stats active={k} idle={n4} waiting=0",
    "{svc}[{n}]: WARN retrying request to inventory: 503 Service Unavailable (attempt 1/3) trace_id={hex}",
    "{svc}[{n}]: ERROR failed to refresh auth token cache: context canceled trace_id={hex}",
    "{svc}[{n}]: INFO GET /api/{svc}/items/{n} 404 {k}ms trace_id={hex}",
    "{svc}[{n}]: WARN slow query on table orders took 6{n4}ms",
)


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(p) for p in parts))


def _local(node_id: str) -> str:
    """A node's name within its fleet (``node-03``): noise depends on the seed, not on the cluster's name."""
    return "node-" + node_id.rsplit("-node-", 1)[-1]


def _fault_key(fault: Fault) -> str:
    """What a fault's log bursts are seeded by: its kind, onset and target, not its process-wide id."""
    return f"{fault.kind}|{fault.started_at}|{_local(fault.target) if fault.node else fault.target}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _render(template: str, rng: random.Random, *, svc: str, node: str, release: str = "v1.0.0") -> str:
    return template.format(
        release=release,
        n=rng.randint(1000, 99999),
        n4=rng.randint(10, 254),
        k=rng.randint(1, 7),
        svc=svc,
        node=node,
        hex=f"{rng.getrandbits(64):016x}",
    )


class Telemetry:
    """Metrics, logs and health of a ``Fleet``, computed on demand from its faults and a seed."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        seed: int = 0,
        step_s: int = 15,
        log_lines_per_min: int = 8,
        burst_every_s: float = 8.0,
        wording: Wording | None = None,
    ) -> None:
        self.fleet = fleet
        # None: faults log the catalog's signature lines; "tune"/"held_out": paraphrases (sim.paraphrase)
        self.wording = wording
        self.burst_every_s = burst_every_s
        self.seed = seed
        self.step_s = step_s
        self.log_lines_per_min = log_lines_per_min
        self._samples: dict[tuple[object, ...], dict[str, float]] = {}

    # ----------------------------------------------------------------- metrics
    def _timestamps(self, minutes: float, now: float | None) -> list[float]:
        now = self.fleet.now() if now is None else now
        start = now - minutes * 60
        first = math.ceil(start / self.step_s) * self.step_s
        stamps = [float(t) for t in range(int(first), int(now) + 1, self.step_s) if t < now]
        return [*stamps, now]

    def _node_sample(self, node: Node, ts: float, faults: list[Fault], view: str | None = None) -> dict[str, float]:
        """One sample of ``node`` at ``ts`` given the faults active then (memoised: it is pure).

        ``view`` None is the node as node_exporter sees it: node faults, plus the CPU a saturated
        service burns on it; ``view`` a service is that service's instance on the node: node faults,
        its own faults and what its callees' faults do to its calls. A fault of one service does
        not show in the latency or errors of another service that merely shares the node.
        """
        key = (node.id, node.instance_id, node.state, tuple(node.services), ts, tuple(f.id for f in faults), view)
        hit = self._samples.get(key)
        if hit is None:
            if len(self._samples) > 200_000:
                self._samples.clear()
            hit = self._samples[key] = self._compute_sample(node, ts, faults, view)
        return dict(hit)

    def _compute_sample(self, node: Node, ts: float, faults: list[Fault], view: str | None) -> dict[str, float]:
        r = _rng(self.seed, _local(node.id), int(ts))
        base = _rng(self.seed, _local(node.id), "base")
        cpu_base, mem_base = base.uniform(20, 50), base.uniform(40, 65)
        s = {
            "cpu": cpu_base + r.uniform(-5, 8),
            "mem": mem_base + r.uniform(-3, 3),
            "disk_io_errors": float(r.random() < 0.03),
            "heartbeat": 1.0,
            "latency_p99_ms": base.uniform(80, 250) * r.uniform(0.8, 1.4),
            "error_rate": r.uniform(0.001, 0.012),
            "cpu_steal": r.uniform(0.0, 3.0),
            "net_rx_drops": float(r.randint(0, 3)),
            "requests_per_s": base.uniform(50, 300) * r.uniform(0.9, 1.1),
            "client_latency_p99_ms": base.uniform(60, 200) * r.uniform(0.8, 1.3),
            "client_error_rate": r.uniform(0.001, 0.01),
        }
        for fault in faults:
            age_min = max(0.0, (ts - fault.started_at) / 60)
            on_node = fault.level == "node" and fault.target == node.id
            on_service = fault.level == "service" and fault.service in node.services and fault.service == view
            if view is None and fault.level == "service" and fault.service in node.services:
                if fault.kind in ("cpu_saturation", "traffic_surge"):  # the node sees the CPU it burns
                    s["cpu"] = min(90.0, s["cpu"] + 25)
                continue
            if not (on_node or on_service):
                continue
            if fault.kind == "disk_failure":
                s["disk_io_errors"] = float(r.randint(20, 200))
                s["latency_p99_ms"] = r.uniform(1600, 3200)
                s["error_rate"] = max(s["error_rate"], r.uniform(0.06, 0.12))
                s["cpu"] = min(100.0, s["cpu"] + 10)  # iowait
            elif fault.kind == "kernel_hang":
                s["heartbeat"] = 0.0
                s["cpu"] = r.uniform(97, 100)  # soft lockup spins a core and starves the rest
                s["latency_p99_ms"] = 30000.0
                s["error_rate"] = r.uniform(0.6, 1.0)
            elif fault.kind == "network_partition":
                s["heartbeat"] = 0.0 if r.random() < 0.75 else 1.0
                s["cpu"] = r.uniform(3, 12)
                s["latency_p99_ms"] = r.uniform(5000, 12000)
                s["error_rate"] = r.uniform(0.25, 0.5)
            elif fault.kind == "memory_leak":
                s["mem"] = min(99.5, 93 + 1.5 * age_min + r.uniform(0, 0.5))
                s["latency_p99_ms"] = max(s["latency_p99_ms"], r.uniform(600, 1400))  # GC pauses
            elif fault.kind == "bad_deploy":
                s["error_rate"] = r.uniform(0.12, 0.35)
                s["latency_p99_ms"] *= 1.3
            elif fault.kind == "cpu_saturation":
                s["cpu"] = r.uniform(96, 100)
                s["latency_p99_ms"] = r.uniform(2000, 4500)
                s["error_rate"] = max(s["error_rate"], r.uniform(0.02, 0.05))
            elif fault.kind == "node_memory_pressure":
                s["mem"] = min(99.5, 93 + 1.0 * age_min + r.uniform(0, 0.8))
                s["latency_p99_ms"] = r.uniform(1600, 2600)  # reclaim and swap stalls
                s["error_rate"] = max(s["error_rate"], r.uniform(0.01, 0.04))
            elif fault.kind == "nic_degradation":
                s["net_rx_drops"] = float(r.randint(200, 900))
                s["latency_p99_ms"] = r.uniform(1700, 3500)  # retransmits
                s["error_rate"] = max(s["error_rate"], r.uniform(0.03, 0.08))
            elif fault.kind == "cpu_steal":
                s["cpu_steal"] = r.uniform(25, 45)
                s["cpu"] = min(91.0, s["cpu"] + 25)
                s["latency_p99_ms"] = r.uniform(1600, 3000)
            elif fault.kind == "traffic_surge":
                s["requests_per_s"] *= r.uniform(3.0, 5.0)
                s["cpu"] = r.uniform(70, 88)
                s["latency_p99_ms"] = r.uniform(1700, 3200)
                s["error_rate"] = max(s["error_rate"], r.uniform(0.02, 0.05))
            elif fault.kind == "bad_config":
                s["error_rate"] = r.uniform(0.08, 0.25)
                s["latency_p99_ms"] *= 1.1
            elif fault.kind == "connection_leak":
                s["latency_p99_ms"] = r.uniform(1800, 4000)
                s["mem"] = min(91.0, s["mem"] + 2 * age_min)
                s["error_rate"] = max(s["error_rate"], r.uniform(0.02, 0.06))
        if view is not None:
            self._dependency_effects(view, faults, s, r)
        if node.state != "running":
            s.update(cpu=0.0, heartbeat=0.0, latency_p99_ms=0.0, error_rate=0.0)
        s["cpu"] = min(100.0, max(0.0, s["cpu"]))
        return {k: round(v, 4) for k, v in s.items()}

    def metrics(
        self, target: str, *, minutes: float = 15, now: float | None = None
    ) -> dict[str, list[tuple[float, float]]]:
        """Series ``{metric: [(ts, value), ...]}`` for a node (id/instance id/IP) or a service, oldest first."""
        stamps = self._timestamps(minutes, now)
        out: dict[str, list[tuple[float, float]]] = {m: [] for m in METRICS}
        nodes = self._nodes_of(target)
        service = target if target in self.fleet.releases else None
        for ts in stamps:
            faults = self.fleet.faults_at(ts)
            samples = [self._node_sample(n, ts, faults, service) for n in nodes]
            if not samples:
                continue
            if service is None:
                merged = samples[0]
            else:  # what a service dashboard shows: the worst replica for latency/memory, sums of counts, means elsewhere
                merged = {m: (sum(x[m] for x in samples) if m in _SUM else max(x[m] for x in samples) if m in _MAX
                              else sum(x[m] for x in samples) / len(samples)) for m in METRICS}
            for m in METRICS:
                out[m].append((ts, round(merged[m], 4)))
        return out

    def _dependency_effects(self, service: str, faults: list[Fault], s: dict[str, float], r: random.Random) -> None:
        """A fault on a service that ``service`` calls makes its calls slow or failing (a cascade)."""
        callees = set(getattr(self.fleet, "dependencies", {}).get(service, ()))
        for fault in faults:
            if fault.level != "service" or fault.service not in callees or fault.kind not in CALLEE_SYMPTOMS:
                continue
            (lat_lo, lat_hi), (err_lo, err_hi) = CALLEE_SYMPTOMS[fault.kind]
            seen_latency, seen_errors = r.uniform(lat_lo, lat_hi), r.uniform(err_lo, err_hi)
            s["client_latency_p99_ms"] = max(s["client_latency_p99_ms"], seen_latency)
            s["client_error_rate"] = max(s["client_error_rate"], seen_errors)
            s["latency_p99_ms"] = max(s["latency_p99_ms"], seen_latency + r.uniform(20, 80))
            s["error_rate"] = max(s["error_rate"], 0.9 * seen_errors)

    # ----------------------------------------------------------------- topology, traces, changes
    def topology(self) -> dict[str, object]:
        """The call graph (caller -> callee) and where every replica runs (service -> node edges)."""
        placement = self.fleet.services
        edges = [[c, d] for c, callees in getattr(self.fleet, "dependencies", {}).items() for d in callees]
        edges += [[svc, n] for svc, nodes in placement.items() for n in nodes]
        components = {n.id: "node" for n in self.fleet.nodes}
        components.update({svc: "service" for svc in placement})
        return {"edges": edges, "placement": {svc: nodes[0] for svc, nodes in placement.items() if nodes},
                "components": components}

    def traces(self, target: str, *, minutes: float = 15, now: float | None = None) -> list[dict[str, Any]]:
        """Per call edge touching ``target``: the callee's latency and error share as its callers see them."""
        edges = [(c, d) for c, callees in getattr(self.fleet, "dependencies", {}).items() for d in callees if target in (c, d)]
        out: list[dict[str, object]] = []
        for caller, callee in edges:
            series = self.metrics(callee, minutes=minutes, now=now)
            out.append({"caller": caller, "callee": callee, "latency": series["latency_p99_ms"],
                        "errors": series["error_rate"]})
        return out

    def changes(self, *, minutes: float = 60, now: float | None = None) -> list[dict[str, object]]:
        """Deploys and config pushes in the window, oldest first."""
        now = self.fleet.now() if now is None else now
        return sorted((dict(c) for c in getattr(self.fleet, "changes", []) if now - minutes * 60 <= c["at"] <= now),
                      key=lambda c: c["at"])

    def _nodes_of(self, target: str) -> list[Node]:
        if target in self.fleet.releases:
            return [self.fleet.node(n) for n in self.fleet.services[target]]
        return [self.fleet.node(target)]

    # ----------------------------------------------------------------- health
    def status(self, target: str, *, now: float | None = None) -> dict[str, Any]:
        """The latest sample of ``target`` and which thresholds it breaks (empty list = healthy)."""
        now = self.fleet.now() if now is None else now
        faults = self.fleet.faults_at(now)
        nodes = self._nodes_of(target)
        view = target if target in self.fleet.releases else None
        breaches: list[str] = []
        latest: dict[str, dict[str, float]] = {}
        for node in nodes:
            sample = self._node_sample(node, now, faults, view)
            latest[node.id] = sample
            if node.state != "running":
                breaches.append(f"{node.id}: instance {node.state}")
            # the heartbeat of a partitioned node flaps: a node counts as down if it missed any
            # heartbeat in the last minute, as a real "absent_over_time" rule would
            recent = [self._node_sample(node, now - d, faults, view)["heartbeat"] for d in (0, 15, 30, 45)]
            if min(recent) < 1.0 and node.state == "running":
                breaches.append(f"{node.id}: heartbeat missing")
            for metric, limit in THRESHOLDS.items():
                if sample[metric] > limit:
                    breaches.append(f"{node.id}: {metric}={sample[metric]} > {limit}")
        if not nodes:
            breaches.append(f"{target}: no nodes")
        return {"target": target, "healthy": not breaches, "breaches": breaches, "latest": latest, "ts": now}

    def health(self, target: str, *, now: float | None = None) -> bool:
        """What a verification probe asks: is ``target`` within every threshold right now?"""
        return bool(self.status(target, now=now)["healthy"])

    # ----------------------------------------------------------------- logs
    def logs(self, service_or_node: str, *, minutes: float = 15, now: float | None = None) -> list[str]:
        """Log lines of a service (its processes on every node) or of a node (syslog + hosted services)."""
        now = self.fleet.now() if now is None else now
        start = now - minutes * 60
        is_service = service_or_node in self.fleet.releases
        nodes = self._nodes_of(service_or_node)
        lines: list[tuple[float, str]] = []
        for node in nodes:
            sources = [service_or_node] if is_service else ["syslog"]  # a node's stream is its system journal
            for source in sources:
                lines += self._source_lines(node, source, start, now, node_stream=not is_service)
        lines.sort(key=lambda x: x[0])
        return [text for _, text in lines]

    def _source_lines(
        self, node: Node, source: str, start: float, end: float, *, node_stream: bool
    ) -> list[tuple[float, str]]:
        """Noise at a steady rate, plus a burst of signature lines (one every few seconds) per fault."""
        out: list[tuple[float, str]] = []
        svc = source if source != "syslog" else (node.services[0] if node.services else "agent")
        for minute in range(int(start // 60), int(end // 60) + 1):
            r = _rng(self.seed, _local(node.id), source, minute)
            for _ in range(self.log_lines_per_min):
                ts = minute * 60 + r.uniform(0, 60)
                text = _render(
                    r.choice(_NODE_NOISE if source == "syslog" else _SERVICE_NOISE), r, svc=svc, node=node.id
                )
                if start <= ts <= end:
                    out.append((ts, f"{_iso(ts)} {node.id} {text}"))
        for fault in self.fleet.all_faults():
            templates = self._signature_for(node, source, fault, node_stream=node_stream)
            if not templates:
                continue
            stop = min(end, fault.resolved_at if fault.resolved_at is not None else end)
            first = max(0, int((start - fault.started_at) // self.burst_every_s))
            j = first
            while True:
                r = _rng(self.seed, _fault_key(fault), _local(node.id), source, j)
                ts = fault.started_at + 0.5 + j * self.burst_every_s + r.uniform(0, self.burst_every_s / 2)
                if ts > stop:
                    break
                if ts >= start:
                    fault_svc = svc if source != "syslog" else (fault.service or svc)
                    text = _render(
                        r.choice(templates),
                        r,
                        svc=fault_svc,
                        node=node.id,
                        release=self.fleet.releases.get(fault_svc, "v1.0.0"),
                    )
                    out.append((ts, f"{_iso(ts)} {node.id} {text}"))
                j += 1
        return out

    def _signature_for(self, node: Node, source: str, fault: Fault, *, node_stream: bool) -> list[str]:
        """Signature templates of ``fault`` visible in this node's ``source`` stream."""
        templates: list[str] = []
        spec = FAULT_KINDS[fault.kind]
        if fault.level == "node" and fault.target != node.id:
            return templates
        if fault.level == "service" and fault.service not in node.services:
            return templates
        signatures = (spec.signatures if self.wording is None
                      else paraphrase.templates(fault.kind, wording=self.wording, seed=f"{self.seed}|{_fault_key(fault)}"))
        for t in signatures:
            from_process = t.startswith("{svc}")
            if source == "syslog":
                # the journal of the node carries kernel/system lines of any fault on it
                if not from_process and node_stream:
                    templates.append(t)
            elif from_process and (fault.level == "node" or fault.service == source):
                templates.append(t)
            elif (
                not from_process and fault.level == "service" and fault.service == source and not node_stream
            ):
                # a service's own view of e.g. the OOM killer or the deploy tool
                templates.append(t)
        return templates
