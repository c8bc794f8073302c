"""Shared small fixtures: a simulated history and one small fitted model (fit once per session).

SMALL pins the served family to the tuned causal forest (48 trees, twin calibration on 1,000
rows): the tests that use it are about the model, the policy, training and the registry, not
about which family wins, and running the six-candidate selection in each of them made the causal
tests take a quarter of an hour. Selection and stacking are tested on their own in
test_selection.py and test_served_estimator.py.
"""

from __future__ import annotations

import pytest

from causal.model import MitigationEffectModel, ModelConfig
from causal.synthetic import simulate_events

SMALL = ModelConfig(n_estimators=48, nuisance_max_iter=40, min_samples_leaf=20, max_samples=0.4,
                    random_state=0, estimator="causal_forest_dml", calibration_rows=1000)


@pytest.fixture(scope="session")
def history():
    return simulate_events(3000, seed=11)


@pytest.fixture(scope="session")
def fresh():
    return simulate_events(1500, seed=12)


@pytest.fixture(scope="session")
def fitted(history):
    return MitigationEffectModel(SMALL).fit(history.frame)
