"""The 100k-event training budget (issue 12): rows per tree capped on large data, no fit-time DR ATE,
the slow families out of the race on large data, and the card's seconds per fit stage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from causal.estimation import RowCappedCausalForestDML, ServedEstimator, capped_max_samples, served_candidates
from causal.model import ModelConfig

FAST = ModelConfig(n_estimators=24, nuisance_max_iter=30, min_samples_leaf=10, n_jobs=1, random_state=0,
                   calibration_rows=600, estimator="causal_forest_dml")


def _binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 1]))).astype(int)
    y = X[:, 1] + (1.0 + 2.0 * X[:, 0]) * t + rng.normal(size=n)
    return X, t, y


def _final_forests(estimator: RowCappedCausalForestDML) -> list:
    return list(estimator.rlearner_model_final_._model.estimators_)


def test_the_row_cap_applies_above_the_threshold_and_not_below():
    # the defaults: share 0.3, cap 25,000 -> the count once econml's floor(0.3 x rows) exceeds 25,000
    share, cap = ModelConfig().max_samples, ModelConfig().max_rows_per_tree
    assert (share, cap) == (0.3, 25_000)
    assert capped_max_samples(83_336, share, cap) == 0.3       # floor(25,000.8): exactly the cap already
    assert capped_max_samples(83_337, share, cap) == 25_000    # floor(25,001.1) > 25,000
    assert capped_max_samples(100_000, share, cap) == 25_000
    assert capped_max_samples(100_000, share, None) == 0.3       # no cap configured
    assert capped_max_samples(100_000, 20_000, cap) == 20_000    # a count is left as given


@pytest.mark.parametrize(("rows", "cap", "per_tree"), [(1000, 200, 200), (1000, 400, 300)])
def test_the_served_forest_draws_at_most_the_cap_per_tree(rows, cap, per_tree):
    X, t, y = _binary(rows, seed=1)
    forest = served_candidates(replace(FAST, max_rows_per_tree=cap))["causal_forest_dml"]()
    assert isinstance(forest, RowCappedCausalForestDML)
    forest.fit(y, t, X=X)
    assert forest.rows_per_tree_ == (cap if per_tree == cap else 0.3)
    for grf in _final_forests(forest):
        # econml's own record of how many rows each subforest's trees drew
        assert set(grf.slices_n_samples_subsample_) == {per_tree}
    assert forest.max_samples == 0.3   # the configured share is kept for the next fit


def test_the_served_forest_computes_no_fit_time_ate():
    X, t, y = _binary(600, seed=2)
    forest = served_candidates(FAST)["causal_forest_dml"]().fit(y, t, X=X)
    assert forest.drate is False
    with pytest.raises(AttributeError, match="drate"):
        _ = forest.ate_
    assert np.isfinite(forest.const_marginal_effect(X[:5])).all()


def test_the_card_has_seconds_per_fit_stage_and_the_rows_per_tree():
    X, t, y = _binary(1000, seed=3)
    served = ServedEstimator(replace(FAST, max_rows_per_tree=250)).fit(y, t, X=X)
    card = served.card()
    timings = card["fit_timings"]
    assert set(timings) == {"selection", "refit", "calibration", "total"}
    assert all(v >= 0 for v in timings.values())
    assert timings["refit"] > 0 and timings["calibration"] > 0
    assert timings["total"] >= timings["refit"] + timings["calibration"] - 0.05
    assert card["rows_per_tree"] == 250


def test_model_metadata_carries_the_fit_timings(fitted):
    timings = fitted.metadata()["estimator"]["fit_timings"]
    assert timings and {"selection", "refit", "calibration"} <= set(timings)


def test_large_data_races_fewer_families_on_fewer_folds():
    X, t, y = _binary(900, seed=4)
    config = replace(FAST, estimator="select", selection_rows=500, calibrate_intervals=False,
                     candidates=("linear_dml", "t_learner_gb", "x_learner_gb"))
    assert "x_learner_gb" in config.large_data_skip
    served = ServedEstimator(config).fit(y, t, X=X)
    selection = served.card()["selection"]
    assert {c["name"] for c in selection["candidates"]} == {"linear_dml", "t_learner_gb"}
    assert "x_learner_gb" in selection["left_out"]
    assert selection["folds"] == config.selection_folds_large == 2
    assert selection["subsample_rows"] == 500
    # within selection_rows: every family races, on selection_folds folds
    small = ServedEstimator(replace(config, selection_rows=4000)).fit(y, t, X=X).card()["selection"]
    assert {c["name"] for c in small["candidates"]} == set(config.candidates)
    assert small["folds"] == config.selection_folds == 3
