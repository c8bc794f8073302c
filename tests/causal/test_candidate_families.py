"""Opt-in candidate families (issue 12): standard econml families that race only when named."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from causal.estimation import EXTRA_CANDIDATES, ServedEstimator, racing_candidates, served_candidates
from causal.model import ModelConfig

FAST = ModelConfig(n_estimators=24, nuisance_max_iter=30, min_samples_leaf=10, n_jobs=1, random_state=0,
                   calibration_rows=600)


def _three_actions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    t = rng.integers(0, 3, size=n)
    tau = np.column_stack([1.0 + X[:, 0], -1.0 + 0.5 * X[:, 1] ** 2])
    y = X[:, 2] + np.column_stack([np.zeros(n), tau])[np.arange(n), t] + 0.5 * rng.normal(size=n)
    return X, t, y, tau


def test_opt_in_families_do_not_race_by_default():
    assert not set(EXTRA_CANDIDATES) & set(served_candidates(FAST))
    families = served_candidates(replace(FAST, extra_candidates=EXTRA_CANDIDATES))
    assert set(EXTRA_CANDIDATES) <= set(families)
    default = racing_candidates(FAST, families, 1000)
    assert not set(EXTRA_CANDIDATES) & set(default)
    assert {"causal_forest_dml", "linear_dml", "t_learner_gb"} <= set(default)


def test_a_named_opt_in_family_races_and_explicit_candidates_win():
    families = served_candidates(replace(FAST, extra_candidates=EXTRA_CANDIDATES))
    named = racing_candidates(replace(FAST, extra_candidates=("linear_dml_auto",)), families, 1000)
    assert "linear_dml_auto" in named and "linear_dml_poly2" not in named
    only = racing_candidates(replace(FAST, candidates=("linear_dml_poly2", "t_learner_gb")), families, 1000)
    assert set(only) == {"linear_dml_poly2", "t_learner_gb"}


def test_large_data_still_leaves_the_slow_families_out():
    config = replace(FAST, extra_candidates=("causal_forest_dml_auto",), selection_rows=500)
    names = racing_candidates(config, served_candidates(config), 900)
    assert "causal_forest_dml_auto" in names
    assert not set(config.large_data_skip) & set(names)


@pytest.mark.parametrize("name", EXTRA_CANDIDATES)
def test_each_opt_in_family_fits_several_actions(name):
    X, t, y, tau = _three_actions(900, seed=1)
    model = served_candidates(replace(FAST, extra_candidates=(name,)))[name]().fit(y, t, X=X)
    effect = np.asarray(model.const_marginal_effect(X), float).reshape(len(X), -1)
    assert effect.shape == (len(X), 2) and np.isfinite(effect).all()
    # each learns the sign and rough size of both effects (truth: mean +1.0 and -0.5)
    assert np.allclose(effect.mean(axis=0), tau.mean(axis=0), atol=0.35)


def test_the_served_estimator_can_serve_an_opt_in_family():
    X, t, y, _ = _three_actions(900, seed=2)
    served = ServedEstimator(replace(FAST, estimator="linear_dml_poly2")).fit(y, t, X=X)
    assert served.name == "linear_dml_poly2"
    point, lo, hi = served.interval(X[:20], alpha=0.1)
    assert point.shape == (20, 2) and (lo <= point).all() and (point <= hi).all()
