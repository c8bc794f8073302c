"""Separate the root cause from its victims with the topology (MicroRCA-style random walk).

WHY: a slow or failing dependency makes every caller slow too, so the loudest component is often
a victim. On the anomalous subgraph (anomalous components, the alerted ones, and the call /
placement edges between them) a random walker moves from a caller to the callees it depends on in
proportion to their anomaly, walks back with a small weight, and stays on a component in proportion
to the small restart on its own anomaly (personalised PageRank, networkx). Mass piles up where the anomaly stops
propagating: the deepest anomalous dependency.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

# chosen on the PetShop train split (20 issues) among 0.05/0.1/0.2, jointly with rank.W_OWN
BACKWARD = 0.2   # weight of walking from a callee back to its caller (MicroRCA's backward edge)
ALPHA = 0.85     # PageRank damping (the networkx default)


def pagerank_scores(anomaly: dict[str, float], edges: list[list[str]], placement: dict[str, str], *,
                    alert_components: list[str]) -> dict[str, float]:
    """Personalised PageRank on the anomalous subgraph; components outside it score 0."""
    nodes = {c for c, a in anomaly.items() if a > 0} | {c for c in alert_components if c in anomaly}
    if not nodes:
        return {}
    depends = [(a, b) for a, b in edges if a in nodes and b in nodes and a != b]
    depends += [(s, n) for s, n in placement.items() if s in nodes and n in nodes]  # a service depends on its node
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    floor = 1e-3
    for caller, callee in depends:
        graph.add_edge(caller, callee, weight=anomaly.get(callee, 0.0) + floor)
        back = BACKWARD * (anomaly.get(caller, 0.0) + floor)
        if not graph.has_edge(callee, caller):
            graph.add_edge(callee, caller, weight=back)
    for node in nodes:  # staying weighs like walking back, so a sink is not emptied into its callers
        graph.add_edge(node, node, weight=BACKWARD * anomaly.get(node, 0.0) + floor)
    personal = {n: anomaly.get(n, 0.0) + floor for n in nodes}
    try:
        return nx.pagerank(graph, alpha=ALPHA, personalization=personal, weight="weight", max_iter=200)
    except nx.PowerIterationFailedConvergence:
        return {n: personal[n] / sum(personal.values()) for n in nodes}


def with_graph(case: dict[str, Any]) -> tuple[list[list[str]], dict[str, str]]:
    return [list(e) for e in case.get("edges", [])], dict(case.get("placement") or {})
