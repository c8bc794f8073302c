"""The causal graph, declared explicitly, and its identification with dowhy.

WHY explicit: the effect estimates are only causal under the assumption that the node signals
and context (every feature) are the common causes of both the action operators chose and the
downtime that followed, and that nothing else drives both. Writing the graph down makes that
assumption reviewable, and dowhy checks the effect is identifiable (backdoor) under it.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd

from causal.data import FEATURE_NAMES, OUTCOME

TREATMENT_NODE = "treated"   # binary contrast indicator: 1 = the action, 0 = the baseline


def causal_graph(*, treatment: str = TREATMENT_NODE, outcome: str = OUTCOME,
                 features: tuple[str, ...] = FEATURE_NAMES) -> nx.DiGraph:
    """features -> treatment, features -> outcome, treatment -> outcome."""
    graph = nx.DiGraph()
    graph.add_nodes_from([*features, treatment, outcome])
    for name in features:
        graph.add_edge(name, treatment)
        graph.add_edge(name, outcome)
    graph.add_edge(treatment, outcome)
    return graph


def causal_graph_dot(**kwargs: Any) -> str:
    """The same graph as DOT text (for docs, the API and review)."""
    graph = causal_graph(**kwargs)
    edges = "\n".join(f'  "{a}" -> "{b}";' for a, b in graph.edges)
    return "digraph deoxys {\n" + edges + "\n}\n"


def build_causal_model(data: pd.DataFrame, *, treatment: str = TREATMENT_NODE,
                       outcome: str = OUTCOME, features: tuple[str, ...] = FEATURE_NAMES) -> Any:
    """A dowhy CausalModel over `data` (columns: features, treatment, outcome)."""
    from dowhy import CausalModel

    return CausalModel(data=data, treatment=treatment, outcome=outcome,
                       graph=causal_graph(treatment=treatment, outcome=outcome, features=features),
                       effect_modifiers=list(features))


def identify(model: Any) -> Any:
    """Identify the effect (backdoor adjustment on the features) under the declared graph."""
    return model.identify_effect(proceed_when_unidentifiable=False)
