"""What the calibration twin plants (causal/calibration.py): twicing, the DR residual share, the switch (issue 12)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression

from causal.calibration import dr_residual_plant, twicing_plant, twin_outcome
from causal.estimation import ServedEstimator
from causal.model import ModelConfig

FAST = ModelConfig(n_estimators=48, nuisance_max_iter=40, min_samples_leaf=10, n_jobs=1, random_state=0,
                   calibration_rows=2000)


class HalfwayT:
    """A deterministic over-smoothing family: half of a linear T-learner's heterogeneity, plus its mean."""

    def fit(self, Y: np.ndarray, T: np.ndarray, *, X: np.ndarray) -> HalfwayT:
        self.arms = [LinearRegression().fit(X[T == k], Y[T == k]) for k in (0, 1)]
        self._X = X
        return self

    def const_marginal_effect(self, X: np.ndarray) -> np.ndarray:
        raw = self.arms[1].predict(X) - self.arms[0].predict(X)
        centre = float(np.mean(self.arms[1].predict(self._X) - self.arms[0].predict(self._X)))
        return (centre + 0.5 * (raw - centre)).reshape(-1, 1)


def _case(n: int, seed: int, shape: str = "step") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 1]))).astype(int)
    tau = 1.0 + 2.0 * X[:, 0] if shape == "linear" else 1.0 + 2.0 * (X[:, 0] > 0) - 1.5 * (X[:, 2] > 0.5)
    y = X[:, 1] + np.sin(X[:, 2]) + tau * t + rng.normal(size=n)
    return X, t, y, tau


def test_twicing_plants_two_references_minus_the_refit_and_is_rougher_than_the_reference():
    X, t, y, _ = _case(3000, seed=1, shape="linear")
    mu0 = HistGradientBoostingRegressor(max_iter=40, random_state=0)
    reference = HalfwayT().fit(y, t, X=X).const_marginal_effect(X)   # ~ 1 + 1 x0: half the truth's slope
    planted = twicing_plant(reference, X, t, y, make_reference=HalfwayT, mu0_model=mu0, seed=5)
    # the form: 2 * reference - the family's estimate on a twin that plants the reference
    refit = HalfwayT().fit(twin_outcome(X, t, y, reference, mu0_model=mu0, seed=5), t, X=X).const_marginal_effect(X)
    np.testing.assert_allclose(planted, 2 * reference - refit)
    assert not np.allclose(planted, reference)
    # the family halves heterogeneity: reference slope ~1, refit ~0.5, plant ~1.5 (truth 2)
    slope = lambda v: float(np.polyfit(X[:, 0], v.reshape(-1), 1)[0])  # noqa: E731
    assert slope(reference) == pytest.approx(1.0, abs=0.15)
    assert slope(planted) == pytest.approx(1.5, abs=0.2)


def _coverage(served: ServedEstimator, X: np.ndarray, tau: np.ndarray) -> float:
    _, lo, hi = (a.reshape(-1) for a in served.interval(X, alpha=0.1))
    return float(np.mean((lo <= tau) & (tau <= hi)))


def test_twicing_calibration_covers_a_planted_step_effect_better_than_the_raw_forest():
    """A forest on 2,000 rows smooths a step away; its own 90% intervals under-cover the truth."""
    X, t, y, tau = _case(3000, seed=2)
    fit, held = np.arange(2000), np.arange(2000, 3000)
    config = replace(FAST, estimator="causal_forest_dml")
    raw = ServedEstimator(replace(config, calibrate_intervals=False)).fit(y[fit], t[fit], X=X[fit])
    twicing = ServedEstimator(config).fit(y[fit], t[fit], X=X[fit])
    estimate = ServedEstimator(replace(config, calibration_plant="estimate")).fit(y[fit], t[fit], X=X[fit])
    cov_raw, cov_twicing = _coverage(raw, X[held], tau[held]), _coverage(twicing, X[held], tau[held])
    cov_estimate = _coverage(estimate, X[held], tau[held])
    assert cov_raw < 0.85, cov_raw
    assert cov_twicing >= cov_raw + 0.05 and cov_twicing >= cov_estimate, (cov_raw, cov_estimate, cov_twicing)
    assert 0.85 <= cov_twicing <= 0.99, cov_twicing


@pytest.mark.parametrize("plant", ["twicing", "dr_residual", "estimate"])
def test_the_factor_is_never_below_the_family_own_intervals(plant):
    X, t, y, _ = _case(1500, seed=3, shape="linear")
    cal = ServedEstimator(replace(FAST, estimator="causal_forest_dml", calibration_plant=plant,
                                  calibration_rows=1200)).fit(y, t, X=X).calibration
    assert cal is not None and cal.raw_stderr and cal.plant == plant
    assert cal.factor[0] == max(1.0, cal.factor_twin[0]) and cal.factor[0] >= 1.0


def test_the_plant_option_switches_what_the_twin_plants():
    X, t, y, _ = _case(1500, seed=4)
    cards = {}
    for plant in ("twicing", "dr_residual", "estimate"):
        served = ServedEstimator(replace(FAST, estimator="causal_forest_dml", calibration_plant=plant,
                                         calibration_rows=1500)).fit(y, t, X=X)
        cards[plant] = served.card()["interval_calibration"]
        assert cards[plant]["plant"] == plant and cards[plant]["reference"] == "causal_forest_dml"
    assert cards["estimate"]["plant_roughness"] == [0.0]             # the estimate itself
    assert cards["twicing"]["plant_roughness"][0] > 0.05
    assert len(cards["dr_residual"]["residual_share"]) == 1 and cards["twicing"]["residual_share"] == []
    assert cards["twicing"]["factor_twin"][0] > cards["estimate"]["factor_twin"][0]   # a rougher plant is harder
    with pytest.raises(ValueError, match="unknown calibration_plant 'smooth'"):
        ServedEstimator(replace(FAST, estimator="t_learner_gb", calibration_plant="smooth")).fit(y, t, X=X)


def test_a_rigid_family_is_calibrated_against_a_flexible_reference():
    """LinearDML on a step: a twin built from its own (linear) estimate cannot show its misspecification."""
    X, t, y, _ = _case(1500, seed=5)
    config = replace(FAST, estimator="linear_dml", calibration_rows=1500)
    rigid = ServedEstimator(config).fit(y, t, X=X).calibration
    own = ServedEstimator(replace(config, calibration_rigid=())).fit(y, t, X=X).calibration
    assert rigid is not None and own is not None
    assert rigid.reference == "causal_forest_dml" and own.reference == "linear_dml"
    assert rigid.factor_twin[0] > own.factor_twin[0]


def test_the_dr_residual_share_is_small_for_a_right_estimate_and_large_for_a_wrong_one():
    X, t, y, tau = _case(4000, seed=6)
    right = tau.reshape(-1, 1)
    wrong = np.full_like(right, tau.mean())
    _, share_right = dr_residual_plant(right, X, t, y, seed=0, rounds=40)
    planted, share_wrong = dr_residual_plant(wrong, X, t, y, seed=0, rounds=40)
    assert share_right[0] < 0.3 < share_wrong[0], (share_right, share_wrong)
    # the shrunk held-out fit puts back heterogeneity the constant estimate missed, in the truth's direction
    assert np.corrcoef(planted[:, 0], tau)[0, 1] > 0.5
