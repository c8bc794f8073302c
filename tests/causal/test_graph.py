import pandas as pd

from causal.data import FEATURE_NAMES, OUTCOME, featurize
from causal.graph import TREATMENT_NODE, build_causal_model, causal_graph, causal_graph_dot, identify


def test_graph_is_explicit_and_backdoor_identified(history):
    graph = causal_graph()
    for name in FEATURE_NAMES:
        assert graph.has_edge(name, TREATMENT_NODE) and graph.has_edge(name, OUTCOME)
    assert graph.has_edge(TREATMENT_NODE, OUTCOME)
    assert f'"{TREATMENT_NODE}" -> "{OUTCOME}";' in causal_graph_dot()
    rows = history.frame.head(300)
    data = pd.DataFrame(featurize(rows), columns=list(FEATURE_NAMES))
    data[TREATMENT_NODE] = (rows["action"] == "redeploy").astype(int).to_numpy()
    data[OUTCOME] = rows[OUTCOME].to_numpy()
    estimand = identify(build_causal_model(data))
    backdoor = estimand.get_backdoor_variables()
    assert set(backdoor) == set(FEATURE_NAMES)
