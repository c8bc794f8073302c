"""Fault typing: which fault a component has, from which kinds of signal moved on it.

WHY: a memory fault shows in memory series, a CPU fault in CPU series, a slow dependency only in
latency; the fault type follows from the kinds that moved on the root-cause component, weighted
so that resource signals (cpu, memory, disk) outrank the symptoms every fault produces (latency,
errors, traffic). A change event (deploy, config) on the component points at a bad change. The
phrase table and recalled episodes add smaller votes. The weights are priors stated here, not
fitted to any data set.
"""

from __future__ import annotations

import math
from typing import Any

# signal kind -> (fault type, weight). Resource kinds first: they name the fault; symptoms only hint.
KIND_TO_FAULT: dict[str, tuple[str, float]] = {
    "memory": ("memory_leak", 1.0),
    "cpu": ("cpu_saturation", 1.0),
    "disk": ("disk_failure", 1.0),
    "errors": ("bad_deploy", 0.8),
    "change": ("bad_deploy", 1.2),
    "network": ("network_delay", 0.5),
    "latency": ("network_delay", 0.6),
    "traffic": ("overload", 0.4),
    "saturation": ("cpu_saturation", 0.3),
    # a leaked resource (file descriptors, pooled connections) named in the component's own error logs
    "leak": ("connection_leak", 1.0),
}
# node-level errors are a hang or a partition, not a bad deploy
NODE_KIND_TO_FAULT: dict[str, tuple[str, float]] = {"errors": ("kernel_hang", 0.8), "network": ("network_partition", 0.6),
                                                    # a machine running out of memory is not one process leaking
                                                    "memory": ("node_memory_pressure", 1.0)}
# a node that stopped reporting is hung or cut off: liveness votes for both, the other kinds (a spinning
# CPU, network counters) and the phrases decide between them; the symptoms every request through a dead
# node shows (latency, errors, traffic, saturation) are its consequences and do not vote
NODE_LIVENESS_FAULTS = (("kernel_hang", 1.0), ("network_partition", 1.0))
# faults of a release or a process, never of a machine: a deploy rolls out a service, a leak is one process's
SERVICE_ONLY_FAULTS = frozenset({"bad_deploy", "memory_leak", "connection_leak"})
SYMPTOM_KINDS = frozenset({"latency", "errors", "traffic", "saturation"})
NODE_KINDS = frozenset({"node", "host", "vm", "instance", "machine"})
FAULT_TYPES = ("cpu_saturation", "memory_leak", "disk_failure", "network_delay", "network_partition", "kernel_hang",
               "bad_deploy", "overload", "connection_leak", "node_memory_pressure")
# kinds that say which resource ran out; the symptoms (latency, errors) any fault produces are then its
# consequences and keep only SYMPTOM_SHARE of their vote (a prior, like the weights above)
RESOURCE_KINDS = frozenset({"cpu", "memory", "disk", "network", "leak"})
SYMPTOM_SHARE = 0.5
# memory that moves with (or after) the CPU is work piling up in a busy process; a leak grows on its own
MEMORY_WITH_CPU = 0.5  # chosen on the train split from {1, 0.5, 0.25} (one case apart)
PHRASE_WEIGHT = 0.5
EPISODE_WEIGHT = 0.5
UNKNOWN = "unknown"


def fault_scores(evidence: list[dict[str, Any]], *, component_kind: str,
                 phrase_votes: dict[str, int] | None = None, episode_votes: dict[str, float] | None = None) -> dict[str, float]:
    """Score every fault type for one component from its evidence items."""
    is_node = component_kind in NODE_KINDS
    table = {**KIND_TO_FAULT, **(NODE_KIND_TO_FAULT if is_node else {})}
    best_per_kind: dict[str, float] = {}
    onset: dict[str, float] = {}
    for item in evidence:
        if item.get("client_side") or item.get("fell"):
            continue  # a caller-side series describes a dependency; a fall is read only for a silent node (below)
        signal = item.get("signal")
        strength = math.log1p(max(float(item.get("z", 3.0)), 0.0)) if item["kind"] in {"metric", "trace"} else 1.5
        if item["kind"] == "alert" and "z" in item:
            strength = math.log1p(max(float(item["z"]), 0.0))
        if item["kind"] == "log":
            strength = 1.5 if item.get("new") else 0.5
        if signal in table or (is_node and signal == "liveness"):
            best_per_kind[signal] = max(best_per_kind.get(signal, 0.0), strength)
            if item.get("at") is not None:
                onset[signal] = min(onset.get(signal, math.inf), float(item["at"]))
    scores: dict[str, float] = {}
    if is_node and "liveness" in best_per_kind:
        for fault, weight in NODE_LIVENESS_FAULTS:
            scores[fault] = scores.get(fault, 0.0) + weight * best_per_kind["liveness"]
        moved = _cpu_moves(evidence)
        if moved:
            # a hung kernel spins its CPUs (a soft lockup), a node cut off from the network gets no work and
            # idles: on a node that stopped reporting, the CPU's direction tells the two apart, not a busy CPU
            sign, strength = max(moved, key=lambda m: m[1])
            scores[NODE_LIVENESS_FAULTS[0 if sign > 0 else 1][0]] += strength
            best_per_kind.pop("cpu", None)
        best_per_kind = {k: v for k, v in best_per_kind.items() if k not in SYMPTOM_KINDS and k != "liveness"}
    if "cpu" in best_per_kind and "memory" in best_per_kind and onset.get("cpu", math.inf) <= onset.get("memory", math.inf):
        best_per_kind["memory"] *= MEMORY_WITH_CPU
    # more work arriving (its own request rate rose) explains a busy CPU: the component is overloaded,
    # not slower per request, so the CPU's vote goes to the load
    overloaded = "traffic" in best_per_kind and "cpu" in best_per_kind
    resource_moved = bool(RESOURCE_KINDS & best_per_kind.keys())
    for signal, strength in best_per_kind.items():
        if signal not in table:
            continue
        fault, weight = table[signal]
        if overloaded and signal == "cpu":
            fault = KIND_TO_FAULT["traffic"][0]
        if resource_moved and signal in SYMPTOM_KINDS - {"traffic"}:
            weight *= SYMPTOM_SHARE
        scores[fault] = scores.get(fault, 0.0) + weight * strength
    for fault, votes in (phrase_votes or {}).items():
        if is_node and fault in SERVICE_ONLY_FAULTS:
            continue  # the context's phrases of a release or a process do not name a machine's fault
        scores[fault] = scores.get(fault, 0.0) + PHRASE_WEIGHT * votes
    for fault, share in (episode_votes or {}).items():
        scores[fault] = scores.get(fault, 0.0) + EPISODE_WEIGHT * share
    return scores


def _cpu_moves(evidence: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(+1 rose / -1 fell, strength) of each of the component's own CPU series that moved."""
    return [(1 if float(e["after"]) > float(e["before"]) else -1, math.log1p(max(float(e.get("z", 0.0)), 0.0)))
            for e in evidence if e.get("kind") == "metric" and e.get("signal") == "cpu" and not e.get("client_side")
            and "before" in e and "after" in e]


def best_fault(scores: dict[str, float]) -> tuple[str, list[str]]:
    """The winning fault type and the runners-up (best first); ``unknown`` when nothing voted."""
    ranked = sorted((f for f, s in scores.items() if s > 0), key=lambda f: (-scores[f], f))
    return (ranked[0], ranked[1:]) if ranked else (UNKNOWN, [])
