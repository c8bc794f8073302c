"""The recommender serves what model selection picks, with intervals calibrated on a twin (issue 12, items 2-3)."""

from __future__ import annotations

import numpy as np
import pytest

from causal.estimation import ServedEstimator, StackedCate, served_candidates, stack_members
from causal.model import MitigationEffectModel, ModelConfig
from causal.policy import MitigationPolicy
from tests.causal.conftest import SMALL

FAST = ModelConfig(n_estimators=48, nuisance_max_iter=40, min_samples_leaf=10, n_jobs=1, random_state=0,
                   calibration_rows=1500)


def _binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confounded binary treatment with a known heterogeneous effect tau(x) = 1 + 2 x0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 1]))).astype(int)
    tau = 1.0 + 2.0 * X[:, 0]
    y = X[:, 1] + np.sin(X[:, 2]) + tau * t + rng.normal(size=n)
    return X, t, y, tau


def test_selection_picks_the_family_that_is_served():
    X, t, y, _ = _binary(1000, seed=1)
    served = ServedEstimator(_with(FAST, estimator="select", calibration_rows=800)).fit(y, t, X=X)
    card = served.card()
    assert card["served"] == card["selection"]["chosen"] == served.name
    scores = {c["name"]: c["score"] for c in card["selection"]["candidates"]}
    assert set(scores) == set(served_candidates(FAST))
    assert scores[served.name] == max(s for s in scores.values() if s is not None)
    # the served effects are the chosen family's own, refit on all rows
    refit = served_candidates(FAST)[served.name]().fit(y, t, X=X)
    np.testing.assert_allclose(served.const_marginal_effect(X[:50]),
                               np.asarray(refit.const_marginal_effect(X[:50])).reshape(50, -1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", ["t_learner_gb", "linear_dml"])
def test_a_named_family_is_served_as_is(family):
    X, t, y, _ = _binary(800, seed=2)
    served = ServedEstimator(_with(FAST, estimator=family)).fit(y, t, X=X)
    assert served.name == family and served.selection is None
    assert type(served.estimator).__name__ == type(served_candidates(FAST)[family]()).__name__


def test_an_unknown_family_is_refused():
    X, t, y, _ = _binary(200, seed=3)
    with pytest.raises(ValueError, match="unknown estimator 'forestish'"):
        ServedEstimator(_with(FAST, estimator="forestish")).fit(y, t, X=X)


def _with(config: ModelConfig, **changes) -> ModelConfig:
    from dataclasses import replace

    return replace(config, **changes)


def test_a_family_without_intervals_gets_calibrated_ones_that_cover_known_effects():
    """The T-learner has no interval of its own; the twin gives it one, measured on held-out truth."""
    X, t, y, tau = _binary(3000, seed=4)
    fit, test = np.arange(2000), np.arange(2000, 3000)
    config = _with(FAST, estimator="t_learner_gb", calibration_rows=2000)
    served = ServedEstimator(config).fit(y[fit], t[fit], X=X[fit])
    assert served.calibration is not None and not served.calibration.raw_stderr
    point, lo, hi = (a.reshape(-1) for a in served.interval(X[test], alpha=0.1))
    coverage = float(np.mean((lo <= tau[test]) & (tau[test] <= hi)))
    assert 0.75 <= coverage <= 0.99, coverage
    # without calibration such a family has no interval, and the policy must never be "sure" of it
    bare = ServedEstimator(_with(config, calibrate_intervals=False)).fit(y[fit], t[fit], X=X[fit])
    assert np.isnan(bare.stderr(X[test])).all()


def test_the_forest_interval_is_its_own_stderr_times_the_twin_factor():
    X, t, y, _ = _binary(1500, seed=5)
    served = ServedEstimator(_with(FAST, estimator="causal_forest_dml")).fit(y, t, X=X)
    cal = served.calibration
    assert cal is not None and cal.raw_stderr and cal.coverage_raw[0] is not None
    raw = np.asarray(served.estimator.const_marginal_effect_inference(X[:20]).stderr).reshape(20, -1)
    np.testing.assert_allclose(served.stderr(X[:20]), raw * cal.factor[0])
    if cal.factor_twin[0] >= 1.0:
        assert cal.coverage_calibrated[0] == pytest.approx(0.9, abs=0.01)
    else:  # floored at the forest's own width: the twin covers at least the calibration level
        assert cal.coverage_calibrated[0] >= 0.89


@pytest.mark.parametrize(("family", "own_intervals"), [("linear_dml", True), ("t_learner_gb", False)])
def test_the_twin_never_shrinks_a_family_below_its_own_intervals(family, own_intervals):
    """Issue 12: the twin's planted effect is smoother than the truth, and a factor < 1 under-covered."""
    X, t, y, _ = _binary(1200, seed=6)
    cal = ServedEstimator(_with(FAST, estimator=family, calibration_rows=1000)).fit(y, t, X=X).calibration
    assert cal is not None and cal.raw_stderr is own_intervals
    if own_intervals:
        assert cal.factor[0] == max(1.0, cal.factor_twin[0])
    else:  # no own width to keep: the twin's half-width as is
        assert cal.factor[0] == cal.factor_twin[0]
    unfloored = ServedEstimator(_with(FAST, estimator=family, calibration_rows=1000, calibration_floor_own=False)
                                ).fit(y, t, X=X).calibration
    assert unfloored is not None and unfloored.factor[0] == pytest.approx(cal.factor_twin[0])


def test_the_policy_serves_the_model_card_estimator(history, fresh):
    model = MitigationEffectModel(_with(SMALL, estimator="t_learner_gb", calibration_rows=1500)).fit(history.frame)
    assert model.metadata()["estimator"]["served"] == "t_learner_gb"
    nodes = fresh.frame.drop(columns=["action"]).iloc[:40]
    batch = MitigationPolicy(model).recommend_batch(nodes)
    table = model.effects(nodes)
    chosen = [r.model_action for r in batch.recommendations]
    from causal.data import ACTIONS

    assert chosen == [ACTIONS[k] for k in np.nan_to_num(table.effect, nan=np.inf).argmin(axis=1)]
    assert all(np.isfinite(table.upper[:, ACTIONS.index(a)]).all() for a in model.trained_actions)


def test_the_stack_weights_minimise_the_validation_r_loss_over_every_single_family():
    """The mix is chosen by the R-loss: no single candidate (a vertex of the simplex) may do better."""
    from causal.selection import EstimatorSelector

    X, t, y, _ = _binary(1200, seed=6)
    candidates = {n: f for n, f in served_candidates(FAST).items()
                  if n in ("causal_forest_dml", "linear_dml", "t_learner_gb")}
    selector = EstimatorSelector(candidates=candidates, seed=0, refit_on_all=False).fit(y, t, X=X)
    weights = selector.card.weights
    assert set(weights) == set(candidates) and min(weights.values()) >= 0
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert selector.card.to_dict()["stack_weights"] == weights
    # R-score of the mix (1 - R-loss / constant-effect R-loss), mean over the cross-fitted folds as for
    # each family's own score: the mix of the fold's fits scored by the fold's scorer
    assert len(selector.folds_) == selector.card.folds == 3
    mix_scores = []
    for _, scorer, fitted in selector.folds_:
        mix = StackedCate({}, weights)
        mix.members = fitted
        mix_scores.append(scorer.score(mix))
    assert np.mean(mix_scores) >= max(selector.card.scores.values()) - 1e-4


def test_stack_members_keep_the_heaviest_and_renormalise():
    assert stack_members({"a": 0.6, "b": 0.3, "c": 0.06, "d": 0.04}, min_weight=0.1, max_members=3) == {
        "a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}
    assert stack_members({"a": 0.5, "b": 0.3, "c": 0.2}, min_weight=0.1, max_members=2) == {
        "a": pytest.approx(0.625), "b": pytest.approx(0.375)}
    assert stack_members({"a": 0.05, "b": 0.04}, min_weight=0.1, max_members=3) == {"a": 1.0}


def test_the_served_stack_is_the_weighted_mix_of_its_refit_members():
    X, t, y, _ = _binary(1000, seed=7)
    config = _with(FAST, estimator="stack", stack_min_weight=0.0, stack_max_members=2, calibration_rows=800,
                   candidates=("linear_dml", "t_learner_gb", "causal_forest_dml"))
    served = ServedEstimator(config).fit(y, t, X=X)
    card = served.card()
    assert card["stack_weights"] == served.weights and len(served.weights) == 2
    assert sum(served.weights.values()) == pytest.approx(1.0)
    assert served.name.startswith("stack(") and isinstance(served.estimator, StackedCate)
    assert {c["name"] for c in card["selection"]["candidates"]} == set(config.candidates)
    expected = sum(w * np.asarray(served_candidates(config)[n]().fit(y, t, X=X).const_marginal_effect(X[:30]))
                   .reshape(30, -1) for n, w in served.weights.items())
    np.testing.assert_allclose(served.const_marginal_effect(X[:30]), expected, rtol=1e-6, atol=1e-6)
    assert served.calibration is not None and np.isfinite(served.stderr(X[:30])).all()
    from causal.registry import dumps_model, loads_model  # the registry must be able to store it

    np.testing.assert_allclose(loads_model(dumps_model(served)).const_marginal_effect(X[:30]),
                               served.const_marginal_effect(X[:30]))


def test_large_data_serves_one_family_and_leaves_the_slow_ones_out_of_the_race():
    X, t, y, _ = _binary(900, seed=8)
    config = _with(FAST, estimator="stack", selection_rows=500, calibration_rows=500)
    served = ServedEstimator(config).fit(y, t, X=X)
    names = {c["name"] for c in served.selection["candidates"]}
    assert names == set(served_candidates(config)) - set(config.large_data_skip) and config.large_data_skip
    assert served.weights == {served.selection["chosen"]: 1.0} and served.name == served.selection["chosen"]
    assert served.selection["left_out"] == sorted(config.large_data_skip)
    assert "500-row subsample of 900 rows" in served.selection["how"] and "one family only" in served.selection["how"]
