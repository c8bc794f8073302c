"""Rank (component, fault) pairs for a case, each with the evidence behind it.

Score of a component = its own anomaly (strongest own metric shift in log units, weighed down when
its onset precedes the fault window; new error log templates; trace edges into it beyond what its own
slow calls explain; change events on it; recalled episodes naming it), halved when another component
explains it (a dead node explains the services on it, a service explains the busy node it loads:
``explanations``), then propagated with a personalised PageRank on the anomalous subgraph
(``propagate``). The fault type
comes from ``faults``. Hypotheses follow the contract the actor relies on: ``root_cause`` (= fault),
``fault``, ``component``, ``component_kind``, ``confidence`` (0..1), ``evidence`` (list of items).
"""

from __future__ import annotations

import math
from typing import Any

from agents.diagnosis.faults import NODE_KINDS, SYMPTOM_KINDS, UNKNOWN, best_fault, fault_scores
from agents.diagnosis.propagate import pagerank_scores, with_graph

# share of the own anomaly in the final score (the rest is PageRank): 0.5 chosen on the PetShop train
# split (20 issues) from {0, 0.2, 0.5} x BACKWARD {0.05, 0.1, 0.2}, kept after a re-check on the wider
# train split ({0.3, 0.5, 0.7} x {0.1, 0.2, 0.4}: within one case); a discount of symptom-only components,
# an earliest-onset bonus, a late-onset discount, a discount of metrics that moved on most components and
# counting a component's client-side latency as its own were tried and did not raise train top-3
W_OWN = 0.5
CHANGE_BONUS = 1.5
EPISODE_BONUS = 0.5
NEW_LOG_BONUS, OLD_LOG_BONUS = 1.0, 0.3
MAX_EVIDENCE = 8
# between a service and the node it runs on, one explains the other's symptoms (see ``explanations``):
# the explained one keeps this share of its own anomaly (changes and episodes included). A prior, not fitted.
EXPLAINED = 0.5
# signal kinds only a machine has: a node showing them explains the services placed on it
HOST_KINDS = frozenset({"liveness", "disk"})
# "clearly further" for ``moves_more``: a quarter more than the node's shift of the same series. A prior
# (the same order as the noise of a max over two replicas), not fitted.
CARRIES = 1.25
# a rise in the requests a service receives comes from its callers, never from its machine: such a service is
# not a victim of its node, and the load it brings explains the node's resource shift
DEMAND = "traffic"
NO_TELEMETRY_CONFIDENCE = 0.05


# chosen on the train split (Nezha's first day of each system, PetShop train), see bench/results/rca.md
TRACE_W = 1.5        # weight of the strongest shifted call edge into a component (from {0.5, 1, 1.5, 2, 3})
TRACE_EXCLUSIVE = True   # an edge into a component counts only beyond what its own slow calls explain
PRE_W = 0.25         # weight of a shift whose onset precedes the fault window by more than PRE_STEPS (from {1, .5, .25, 0})
PRE_STEPS = 1.5


def onset_weight(item: dict[str, Any], *, split_at: float | None, step_s: float) -> float:
    """How well a shift's onset fits this incident: one that began well before the fault window is a
    standing condition (a regime the baseline missed), not what started this incident. A component that
    went silent stays the explanation however early it died (liveness alerts fire after a delay)."""
    at = item.get("at")
    if at is None or split_at is None or item.get("kind") in {"alert", "change"} or item.get("signal") == "liveness":
        return 1.0
    return PRE_W if (float(at) - float(split_at)) / (step_s or 60.0) < -PRE_STEPS else 1.0


def _own_anomaly(info: dict[str, Any], traces_in: list[dict[str, Any]], changes: list[dict[str, Any]],
                 episodes: int, *, traces_out: list[dict[str, Any]] | None = None,
                 split_at: float | None = None, step_s: float = 60.0) -> float:
    own = [e for e in info.get("metrics", []) + info.get("alerts", []) if not e.get("client_side")]

    def strength(e: dict[str, Any]) -> float:
        return math.log1p(e["z"]) * onset_weight(e, split_at=split_at, step_s=step_s)

    score = max((strength(e) for e in own), default=0.0)
    into = max((strength(e) for e in traces_in), default=0.0)
    if TRACE_EXCLUSIVE:
        into = max(0.0, into - max((strength(e) for e in traces_out or []), default=0.0))
    score += into * TRACE_W
    logs = info.get("logs", [])
    score += min(sum(NEW_LOG_BONUS if e.get("new") else OLD_LOG_BONUS for e in logs), 2.0)
    score += CHANGE_BONUS * min(len(changes), 1)
    score += EPISODE_BONUS * episodes
    return score


def _kinds(info: dict[str, Any]) -> set[str]:
    kinds = {str(e.get("signal")) for e in info.get("metrics", []) + info.get("alerts", []) if not e.get("client_side")}
    return kinds | ({"errors"} if info.get("logs") else set())


def _shifts(info: dict[str, Any], kinds: set[str]) -> dict[str, float]:
    """``{metric: |after - before|}`` of the own moved series of ``info`` among signals of ``kinds``."""
    return {str(e["metric"]): abs(float(e["after"]) - float(e["before"])) for e in info.get("metrics", [])
            if not e.get("client_side") and e.get("signal") in kinds and "before" in e and "after" in e}


def moves_more(service: dict[str, Any], node: dict[str, Any], kinds: set[str]) -> bool | None:
    """The service moved clearly further than its node on a series both report (a machine sees a diluted
    share of what one of its services does; a machine fault moves the service's view of it no further);
    None when they report no series in common."""
    mine, its = _shifts(service, kinds), _shifts(node, kinds)
    common = mine.keys() & its.keys()
    return any(mine[m] > CARRIES * its[m] for m in common) if common else None


def _carries(service: str, node: str, *, comps: dict[str, Any], hosts: dict[str, set[str]], kinds: set[str]) -> bool:
    """Whether ``service`` brought the signals ``kinds`` of ``node`` (see ``explanations``)."""
    if DEMAND in _kinds(comps[service]):
        return True
    # "every host shows it" says something only when the service is known to run on more than this node
    if len(hosts[service]) > 1 and all(kinds <= _kinds(comps[n]) for n in hosts[service]):
        return True
    further = moves_more(comps[service], comps[node], kinds - SYMPTOM_KINDS)
    # nothing to compare: a lone known host is taken as the service's own machine, loaded by it
    return len(hosts[service]) == 1 if further is None else further


def hosts_of(case: dict[str, Any]) -> dict[str, set[str]]:
    """``{service: the nodes it runs on}`` from the placement and from service -> node edges.

    WHY: a service with replicas runs on several nodes; a placement map names one of them, while the
    topology's service -> node edges name every replica's host.
    """
    comps = case.get("components", {})

    def is_node(name: str) -> bool:
        return name in comps and comps[name].get("kind", "node") in NODE_KINDS

    hosts: dict[str, set[str]] = {}
    pairs = [(s, n) for s, n in (case.get("placement") or {}).items()] + [(a, b) for a, b in case.get("edges", [])]
    for service, node in pairs:
        if service in comps and not is_node(service) and is_node(node):
            hosts.setdefault(service, set()).add(node)
    return hosts


def explanations(case: dict[str, Any]) -> dict[str, str]:
    """``{explained component: the one that explains it}`` for each node and the services it hosts.

    A node fault shows on every service with a replica on that node; a service fault follows the
    service to every node it runs on and stays off the other services there. So, for a node whose own
    signals moved:

    * it stopped reporting (liveness) or shows machine-only signals (disk): it explains its services;
    * otherwise a service it hosts explains it when that service shows every kind of signal the node
      shows and either every other host of that service (one at least) does too (it carries its load to each
      replica's machine) or the service moved clearly further than the node on a series both report (the
      machine sees a diluted share of what the service does) or the requests it receives rose (demand
      comes from its callers, not from its machine), unless every service on the node shows
      them too (then the node is the common cause);
    * otherwise the node explains the services on it that show its resource kinds (cpu, memory,
      network: what is on one machine only).
    """
    comps = case.get("components", {})
    hosted: dict[str, list[str]] = {}
    hosts = hosts_of(case)
    for service, nodes in hosts.items():
        for node in nodes:
            hosted.setdefault(node, []).append(service)
    out: dict[str, str] = {}
    for node, services in sorted(hosted.items()):
        node_kinds = _kinds(comps[node])
        if not node_kinds:
            continue
        if node_kinds & HOST_KINDS:
            for service in services:
                out.setdefault(service, node)
            continue
        resource = node_kinds - SYMPTOM_KINDS
        showing = [s for s in services if node_kinds <= _kinds(comps[s])]
        carriers = [s for s in showing if _carries(s, node, comps=comps, hosts=hosts, kinds=node_kinds)]
        if carriers and not (len(services) > 1 and len(showing) == len(services)):
            if node not in out:
                out[node] = sorted(carriers)[0]
            continue
        for service in services:
            if resource and resource & _kinds(comps[service]) and service not in out:
                out[service] = node
    return out


def component_scores(case: dict[str, Any], *, episode_components: dict[str, int] | None = None
                     ) -> tuple[dict[str, float], dict[str, float]]:
    """(final score, own anomaly) per component of the case."""
    episode_components = episode_components or {}
    comps = case.get("components", {})
    edges, placement = with_graph(case)
    anomaly: dict[str, float] = {}
    for name, info in comps.items():
        traces_in = [t for t in case.get("traces", []) if (t.get("edge") or [None, None])[1] == name]
        traces_out = [t for t in case.get("traces", []) if (t.get("edge") or [None, None])[0] == name]
        changes = [c for c in case.get("changes", []) if c.get("component") == name]
        anomaly[name] = _own_anomaly(info, traces_in, changes, episode_components.get(name, 0),
                                     traces_out=traces_out, split_at=case.get("split_at"),
                                     step_s=float(case.get("step_s") or 60.0))
    explained = explanations(case)
    for victim, by in explained.items():
        # what another component explains is weaker evidence than that component: the victim keeps a share
        # of its own anomaly and never outranks the one that explains it (a dead node's service may collect
        # trace shifts from its callers that the node, having no calls, cannot)
        anomaly[victim] = EXPLAINED * min(anomaly[victim], anomaly[by])
    # the walk goes from the explained component to the one explaining it: a service -> its dead node,
    # a busy node -> the service loading it (instead of the reverse)
    edges = [e for e in edges if explained.get(e[1]) != e[0]]
    edges += [[victim, by] for victim, by in explained.items() if [victim, by] not in edges]
    placement = {s: n for s, n in placement.items() if explained.get(n) != s}
    adjusted = dict(anomaly)
    ppr = pagerank_scores(adjusted, edges, placement, alert_components=list(case.get("alert_components", [])))
    top_a, top_p = max(adjusted.values(), default=0.0) or 1.0, max(ppr.values(), default=0.0) or 1.0
    if not ppr:  # nothing anomalous
        return {c: 0.0 for c in comps}, anomaly
    final = {c: W_OWN * adjusted[c] / top_a + (1 - W_OWN) * ppr.get(c, 0.0) / top_p for c in comps}
    return final, anomaly


def _phrase_votes(lines_text: str, signatures: dict[str, tuple[str, ...]]) -> dict[str, int]:
    lowered = lines_text.lower()
    return {fault: n for fault, phrases in signatures.items() if (n := sum(1 for p in phrases if p in lowered))}


def rank_case(case: dict[str, Any], *, alert: dict[str, Any], recalled: list[dict[str, Any]] | None = None,
              context: str = "", signatures: dict[str, tuple[str, ...]] | None = None, limit: int = 10
              ) -> list[dict[str, Any]]:
    """Ranked hypotheses (best first) for a case; never empty when the alert names a component."""
    recalled = recalled or []
    episode_components: dict[str, int] = {}
    for r in recalled:
        if r.get("component"):
            episode_components[r["component"]] = episode_components.get(r["component"], 0) + 1
    final, anomaly = component_scores(case, episode_components=episode_components)
    comps = case.get("components", {})
    alerted = list(case.get("alert_components", []))
    phrases = _phrase_votes(context, signatures or {})
    suspects = sorted((c for c in comps if anomaly.get(c, 0) > 0), key=lambda c: (-final[c], c))
    if not suspects:
        return [_no_evidence_hypothesis(case, alert=alert, phrases=phrases, recalled=recalled)]
    total = sum(final[c] for c in suspects[:limit]) or 1.0
    out: list[dict[str, Any]] = []
    for name in suspects[:limit]:
        info = comps[name]
        evidence = _evidence_for(name, case, recalled)
        episode_votes: dict[str, float] = {}
        for r in recalled:
            if r.get("root_cause") and r.get("component") in (None, "", name):
                episode_votes[r["root_cause"]] = episode_votes.get(r["root_cause"], 0.0) + 1.0
        # the phrase table reads the whole context: it votes only for the alerted components
        scores = fault_scores(evidence, component_kind=info.get("kind", "service"),
                              phrase_votes=phrases if name in alerted else None, episode_votes=episode_votes)
        fault, alternatives = best_fault(scores)
        if name in alerted and phrases:
            evidence.append({"kind": "phrase", "component": name, "detail": "signature phrases in the context: "
                             + ", ".join(f"{f} x{n}" for f, n in sorted(phrases.items(), key=lambda x: -x[1]))})
        out.append({"root_cause": fault, "fault": fault, "component": name, "component_kind": info.get("kind", "service"),
                    "confidence": round(min(final[name] / total, 1.0), 3), "score": round(final[name], 4),
                    "alternatives": alternatives[:3], "evidence": evidence[:MAX_EVIDENCE], "rank": len(out)})
    return out


def _evidence_for(name: str, case: dict[str, Any], recalled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    info = case["components"][name]
    items = list(info.get("alerts", []))
    items += [e for e in info.get("metrics", []) if not e.get("client_side")]
    items += [t for t in case.get("traces", []) if (t.get("edge") or [None, None])[1] == name]
    items += [c for c in case.get("changes", []) if c.get("component") == name]
    items += list(info.get("logs", []))
    items += list(info.get("fell", []))  # series that fell on a silent component (see ``faults``)
    items += [{"kind": "episode", "component": name, "root_cause": r.get("root_cause"), "incident_id": r.get("incident_id"),
               "detail": f"similar past incident {r.get('incident_id')} was {r.get('root_cause')} on {name}"}
              for r in recalled if r.get("component") == name]
    items += [e for e in info.get("metrics", []) if e.get("client_side")][:2]  # what it saw of its dependencies
    return items


def _no_evidence_hypothesis(case: dict[str, Any], *, alert: dict[str, Any], phrases: dict[str, int],
                            recalled: list[dict[str, Any]]) -> dict[str, Any]:
    """Nothing moved (or no telemetry): name the alerted component, say so, and keep confidence low."""
    alerted = list(case.get("alert_components", [])) or ["unknown"]
    name = alerted[0]
    info = case.get("components", {}).get(name, {})
    votes = {f: float(n) for f, n in phrases.items()}
    for r in recalled:
        if r.get("root_cause"):
            votes[r["root_cause"]] = votes.get(r["root_cause"], 0.0) + 1.0
    fault, alternatives = best_fault(votes)
    why = ("no telemetry for it or its neighbourhood" if not any(c.get("telemetry") for c in case.get("components", {}).values())
           else "its telemetry shows no shift against the baseline")
    evidence = [{"kind": "alert", "component": name, "detail": f"alert {alert.get('name', '?')} on {name}; {why}"}]
    if phrases:
        evidence.append({"kind": "phrase", "component": name,
                         "detail": "signature phrases: " + ", ".join(f"{f} x{n}" for f, n in phrases.items())})
    confidence = NO_TELEMETRY_CONFIDENCE if fault == UNKNOWN else min(0.3, 0.1 * sum(votes.values()))
    return {"root_cause": fault, "fault": fault, "component": name,
            "component_kind": info.get("kind") or ("node" if name == alert.get("node") else "service"),
            "confidence": round(confidence, 3), "score": 0.0, "alternatives": alternatives[:3],
            "evidence": evidence, "rank": 0}
