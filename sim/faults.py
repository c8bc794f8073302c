"""Fault kinds with their ground truth, and the injector that puts them on the fleet.

Why a catalog: the simulator, not the platform, decides whether a mitigation worked. Each kind
says where it lives (a node or a service), which root-cause label a correct diagnosis must name,
which actions fix it, which symptom-level alert Prometheus would fire (several kinds share one
alert name on purpose, so the alert alone does not give the answer away) and which log lines are
its signature.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sim.fleet import Fleet

Level = Literal["node", "service"]

NODE_ACTIONS = ("wait", "reboot", "stop_start", "replace", "send_to_repair", "migrate", "redeploy")
# failover: move the service's replicas off their current nodes; shed_load: drop low-priority traffic at the edge
SERVICE_ACTIONS = ("wait", "restart_service", "rollback", "scale_out", "redeploy", "failover", "shed_load")


@dataclass(frozen=True)
class FaultKind:
    """Ground truth for one kind of fault."""

    name: str
    level: Level
    root_cause: str
    fixes: frozenset[str]
    alertname: str
    severity: str
    summary: str
    signatures: tuple[str, ...]
    # other labels a correct diagnosis may use for this fault (synonyms, not neighbours)
    synonyms: frozenset[str] = frozenset()
    # the change event the fault arrives with ("deploy", "config"), None when no change explains it
    change: str | None = None
    # the alert a dependent service fires when the fault cascades to it (None: it does not cascade)
    cascade_alert: str | None = None

    @property
    def accepted_labels(self) -> frozenset[str]:
        return frozenset({self.root_cause, self.name}) | self.synonyms


FAULT_KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in (
        FaultKind(
            name="disk_failure",
            level="node",
            root_cause="disk_failure",
            fixes=frozenset({"send_to_repair", "replace"}),
            alertname="NodeDiskIOErrors",
            severity="critical",
            summary="Disk I/O errors on {node}",
            signatures=(
                "kernel: blk_update_request: I/O error, dev nvme1n1, sector {n} op 0x1:(WRITE) flags 0x800",
                "kernel: Buffer I/O error on dev nvme1n1p1, logical block {n}, lost async page write",
                "kernel: EXT4-fs error (device nvme1n1p1): ext4_find_entry:1455: inode #{n}: comm {svc}: reading directory lblock 0",
                "kernel: nvme nvme1: I/O {n} QID 3 timeout, aborting",
            ),
            cascade_alert="ServiceHighLatency",
        ),
        FaultKind(
            name="kernel_hang",
            level="node",
            root_cause="kernel_hang",
            fixes=frozenset({"reboot", "stop_start", "replace"}),
            alertname="NodeHeartbeatMissing",
            severity="critical",
            summary="Node {node} stopped reporting heartbeats",
            signatures=(
                "kernel: INFO: task kworker/u16:{k}:{n} blocked for more than 120 seconds.",
                "kernel: watchdog: BUG: soft lockup - CPU#{k} stuck for 23s! [{svc}:{n}]",
                "kernel: rcu: INFO: rcu_sched self-detected stall on CPU {k}",
                'kernel: "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
            ),
            synonyms=frozenset({"hang", "soft_lockup"}),
            cascade_alert="ServiceHighErrorRate",
        ),
        FaultKind(
            name="network_partition",
            level="node",
            root_cause="network_partition",
            fixes=frozenset({"migrate", "redeploy", "replace"}),
            alertname="NodeHeartbeatMissing",
            severity="critical",
            summary="Node {node} stopped reporting heartbeats",
            signatures=(
                "{svc}[{n}]: ERROR dial tcp 10.0.{k}.{n4}:5432: connect: no route to host",
                "{svc}[{n}]: ERROR upstream request timeout after 5000ms peer=10.0.{k}.{n4}:8080",
                "kernel: ena 0000:00:05.0 eth0: TX hang detected on queue {k}",
                "systemd-networkd[{n}]: eth0: Lost carrier",
            ),
            cascade_alert="ServiceHighErrorRate",
        ),
        FaultKind(
            name="memory_leak",
            level="service",
            root_cause="memory_leak",
            fixes=frozenset({"restart_service"}),
            alertname="ServiceHighMemory",
            severity="warning",
            summary="{service} memory usage keeps growing",
            signatures=(
                "{svc}[{n}]: WARN GC overhead limit approaching: heap used 3{k}{k}0MB of 4096MB after full GC",
                "{svc}[{n}]: ERROR java.lang.OutOfMemoryError: Java heap space",
                "kernel: Memory cgroup out of memory: Killed process {n} ({svc}) total-vm:{n}kB, anon-rss:{n}kB",
                "{svc}[{n}]: WARN cache entries={n}{k} exceeds soft limit, eviction not keeping up",
            ),
            synonyms=frozenset({"oom", "memory_exhaustion"}),
            cascade_alert="ServiceHighLatency",
        ),
        FaultKind(
            name="bad_deploy",
            level="service",
            root_cause="bad_deploy",
            fixes=frozenset({"rollback"}),
            alertname="ServiceHighErrorRate",
            severity="critical",
            summary="{service} error rate above 5%",
            signatures=(
                "{svc}[{n}]: ERROR NullPointerException at com.shop.{svc}.Handler.process(Handler.java:{k}{n4})",
                '{svc}[{n}]: ERROR POST /api/v2/{svc} 500 {k}ms release={release} msg="unexpected nil config key feature_flags"',
                '{svc}[{n}]: ERROR schema mismatch: column "discount_code" does not exist (release {release})',
                "deployd[{n}]: INFO rolled out {svc} release {release} to 100% of hosts",
            ),
            synonyms=frozenset({"bad_release", "bad_change"}),
            change="deploy",
            cascade_alert="ServiceHighErrorRate",
        ),
        FaultKind(
            name="cpu_saturation",
            level="service",
            root_cause="cpu_saturation",
            fixes=frozenset({"scale_out"}),
            alertname="ServiceHighLatency",
            severity="warning",
            summary="{service} p99 latency above SLO",
            signatures=(
                "{svc}[{n}]: WARN worker pool exhausted: {k}{n4} requests queued, rejecting",
                "{svc}[{n}]: WARN slow request GET /api/{svc}/items took {k}{n4}ms (threshold 500ms)",
                "{svc}[{n}]: WARN event loop lag {k}{n4}ms",
                "kernel: sched: RT throttling activated",
            ),
            synonyms=frozenset({"cpu_exhaustion"}),
            cascade_alert="ServiceHighLatency",
        ),
        FaultKind(
            name="node_memory_pressure",
            level="node",
            root_cause="node_memory_pressure",
            fixes=frozenset({"reboot", "stop_start", "replace"}),
            alertname="NodeMemoryHighUtilization",
            severity="warning",
            summary="Node {node} is running out of memory",
            signatures=(
                "kernel: kswapd0: page allocation stalls for {n}ms, order:0, mode:0x{n4}",
                "kernel: {svc} invoked oom-killer: gfp_mask=0x{n4}, order=0, oom_score_adj=0",
                "kernel: SLUB: Unable to allocate memory on node -1, gfp=0x{n4}",
                "kernel: Out of memory: Killed process {n} ({svc}) total-vm:{n}kB",
            ),
            synonyms=frozenset({"memory_pressure", "memory_exhaustion", "memory_leak", "oom"}),
            cascade_alert="ServiceHighMemory",
        ),
        FaultKind(
            name="nic_degradation",
            level="node",
            root_cause="nic_degradation",
            fixes=frozenset({"migrate", "redeploy", "stop_start", "replace"}),
            alertname="NodeNetworkReceiveErrs",
            severity="warning",
            summary="Node {node} drops network packets",
            signatures=(
                "kernel: ena 0000:00:05.0 eth0: Found a Tx that wasn't completed on time, qid {k}, index {n4}.",
                "kernel: ena 0000:00:05.0 eth0: RX ring {k} dropped {n} packets (rx_no_buffer)",
                "{svc}[{n}]: WARN TCP retransmits to 10.0.{k}.{n4}:8080 at {k}.{n4}% of segments",
                "{svc}[{n}]: WARN read from peer 10.0.{k}.{n4}:5432 timed out after {k}000ms, retrying",
            ),
            synonyms=frozenset({"packet_loss", "network_degradation", "network_partition", "network_delay"}),
            cascade_alert="ServiceHighLatency",
        ),
        FaultKind(
            name="cpu_steal",
            level="node",
            root_cause="cpu_steal",
            fixes=frozenset({"migrate", "redeploy", "stop_start", "replace"}),
            alertname="NodeCPUStealHigh",
            severity="warning",
            summary="Node {node} loses CPU time to its hypervisor neighbours",
            signatures=(
                "kernel: hrtimer: interrupt took {n} ns",
                "kernel: clocksource: timekeeping watchdog on CPU{k}: Marking clocksource 'tsc' as unstable",
                "{svc}[{n}]: WARN GC pause {k}{n4}ms exceeded target (cpu starved)",
                "node_exporter[{n}]: level=warn msg=\"cpu steal above 20%\" cpu={k}",
            ),
            synonyms=frozenset({"noisy_neighbor", "noisy_neighbour", "cpu_saturation"}),
            cascade_alert="ServiceHighLatency",
        ),
        FaultKind(
            name="traffic_surge",
            level="service",
            root_cause="traffic_surge",
            fixes=frozenset({"scale_out", "shed_load"}),
            alertname="ServiceHighLatency",
            severity="warning",
            summary="{service} p99 latency above SLO",
            signatures=(
                "{svc}[{n}]: WARN request queue depth {n4} above 100, admitting slowly",
                "{svc}[{n}]: INFO rate limiter: {n} requests/s from client pool mobile-{k}",
                "{svc}[{n}]: WARN upstream connection pool saturated ({k}{n4}/256 in use)",
                "{svc}[{n}]: WARN 429 Too Many Requests returned to {k}{n4} clients in the last 10s",
            ),
            synonyms=frozenset({"overload", "load_spike"}),
            cascade_alert="ServiceHighLatency",
        ),
        FaultKind(
            name="bad_config",
            level="service",
            root_cause="bad_config",
            fixes=frozenset({"rollback"}),
            alertname="ServiceHighErrorRate",
            severity="critical",
            summary="{service} error rate above 5%",
            signatures=(
                '{svc}[{n}]: ERROR invalid value for key "timeout_ms": strconv.Atoi: parsing "{k}s": invalid syntax',
                "{svc}[{n}]: ERROR GET /api/{svc}/items 503 {k}ms trace_id={hex}",
                "confd[{n}]: INFO applied config revision r{n4} to {svc}",
                "{svc}[{n}]: ERROR feature flag service returned malformed payload, using empty defaults",
            ),
            synonyms=frozenset({"config_error", "bad_change", "bad_deploy"}),
            change="config",
            cascade_alert="ServiceHighErrorRate",
        ),
        FaultKind(
            name="connection_leak",
            level="service",
            root_cause="connection_leak",
            fixes=frozenset({"restart_service"}),
            alertname="ServiceHighLatency",
            severity="warning",
            summary="{service} p99 latency above SLO",
            signatures=(
                "{svc}[{n}]: ERROR accept4: too many open files; retrying in 5ms",
                "{svc}[{n}]: WARN db pool: timed out after 30000ms waiting for a connection ({k}{n4} in use)",
                "{svc}[{n}]: WARN connection to 10.0.{k}.{n4}:5432 never returned to pool (opened {k}{n4}s ago)",
                "{svc}[{n}]: ERROR dial tcp 10.0.{k}.{n4}:6379: socket: too many open files",
            ),
            synonyms=frozenset({"resource_leak", "fd_exhaustion", "fd_leak"}),
            cascade_alert="ServiceHighLatency",
        ),
    )
}


@dataclass
class Fault:
    """One injected fault and its ground truth; ``resolved_at``/``resolved_by`` are filled on recovery."""

    id: str
    kind: str
    level: Level
    target: str
    node: str | None
    service: str | None
    started_at: float
    root_cause: str
    fixing_actions: frozenset[str]
    resolved_at: float | None = None
    resolved_by: str | None = None
    attempts: list[dict[str, object]] = field(default_factory=list)
    # a cascade: the alert fires on this service (a dependent of the root), not on the root itself
    alert_service: str | None = None

    @property
    def active(self) -> bool:
        return self.resolved_at is None

    @property
    def time_to_recover_s(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.started_at

    @property
    def spec(self) -> FaultKind:
        return FAULT_KINDS[self.kind]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "level": self.level,
            "target": self.target,
            "node": self.node,
            "service": self.service,
            "root_cause": self.root_cause,
            "fixing_actions": sorted(self.fixing_actions),
            "injected_at": self.started_at,
            "resolved_at": self.resolved_at,
            "resolved_by": self.resolved_by,
            "time_to_recover_s": self.time_to_recover_s,
            "attempts": list(self.attempts),
            "alert_service": self.alert_service,
        }


_ids = itertools.count(1)
_ids_lock = threading.Lock()


def _next_id(prefix: str) -> str:
    with _ids_lock:
        return f"{prefix}-{next(_ids):04d}"


class FaultInjector:
    """Picks fault kinds and targets with a seeded RNG and registers the faults on the fleet.

    A target that already has an active fault is not picked again, so every fault has one
    unambiguous ground truth.
    """

    def __init__(self, fleet: Fleet, *, seed: int = 0, kinds: tuple[str, ...] | None = None) -> None:
        self.fleet = fleet
        self.rng = random.Random(seed)
        self.kinds = tuple(kinds or FAULT_KINDS)
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")

    def inject(self, kind: str | None = None, target: str | None = None, *, at: float | None = None,
               cascade: bool = False) -> Fault:
        """Inject ``kind`` (random if None) on ``target`` (a node id or service name; random if None).

        ``cascade``: the alert fires on a dependent service instead of the root (a service hosted on
        the faulty node, or a caller of the faulty service); the root stays what must be fixed.
        """
        if kind is None:
            kind = self.rng.choice(self.kinds)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {sorted(FAULT_KINDS)}")
        spec = FAULT_KINDS[kind]
        busy = {f.target for f in self.fleet.active_faults()}
        if target is None:
            if spec.level == "node":
                pool = [n.id for n in self.fleet.nodes if n.state == "running" and n.id not in busy
                        and (n.services or not cascade)]
            else:
                pool = [s for s in self.fleet.services if s not in busy and (self.fleet.callers_of(s) or not cascade)]
            if not pool:
                raise RuntimeError(f"no free {spec.level} to inject {kind} on")
            target = self.rng.choice(sorted(pool))
        if spec.level == "node":
            node = self.fleet.node(target)
            service = self.rng.choice(node.services) if node.services else None
            target, node_id = node.id, node.id
        else:
            if target not in self.fleet.services:
                raise ValueError(f"unknown service {target!r}")
            service, node_id = target, None
        fault = Fault(
            id=_next_id("flt"),
            kind=kind,
            level=spec.level,
            target=target,
            node=node_id,
            service=service,
            started_at=self.fleet.now() if at is None else at,
            root_cause=spec.root_cause,
            fixing_actions=spec.fixes,
        )
        if cascade:
            if spec.cascade_alert is None:
                raise ValueError(f"{kind} does not cascade")
            dependents = (sorted(self.fleet.node(node_id).services) if node_id
                          else self.fleet.callers_of(service or ""))
            if not dependents:
                raise RuntimeError(f"{target} has no dependent service to cascade to")
            fault.alert_service = self.rng.choice(dependents)
        self.fleet.add_fault(fault)
        return fault
