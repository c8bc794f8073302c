"""Shared small fixtures: a simulated history and one small fitted model (fit once per session)."""

from __future__ import annotations

import pytest

from causal.model import MitigationEffectModel, ModelConfig
from causal.synthetic import simulate_events

SMALL = ModelConfig(n_estimators=48, nuisance_max_iter=40, min_samples_leaf=20, max_samples=0.4,
                    random_state=0)


@pytest.fixture(scope="session")
def history():
    return simulate_events(3000, seed=11)


@pytest.fixture(scope="session")
def fresh():
    return simulate_events(1500, seed=12)


@pytest.fixture(scope="session")
def fitted(history):
    return MitigationEffectModel(SMALL).fit(history.frame)
