"""Estimator selection by out-of-sample R-loss; the card lists candidates, scores, choice (issue 12, part 2)."""

from __future__ import annotations

import numpy as np
import pytest

from causal.selection import EstimatorSelector, default_candidates


def test_selector_scores_every_candidate_and_keeps_the_best():
    rng = np.random.default_rng(0)
    n = 1500
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    tau = 3.0 * (X[:, 1] > 0) + X[:, 2]
    y = tau * t + X[:, 0] + rng.normal(size=n)
    candidates = default_candidates(seed=0, rounds=30, trees=40)
    selector = EstimatorSelector(candidates=candidates, seed=0, refit_on_all=False).fit(y, t, X=X)
    card = selector.card.to_dict()
    assert {c["name"] for c in card["candidates"]} == set(candidates)
    scores = {c["name"]: c["score"] for c in card["candidates"]}
    assert card["chosen"] == max((s, n) for n, s in scores.items() if s is not None)[1]
    pehe = np.sqrt(np.mean((selector.effect(X) - tau) ** 2))
    assert pehe < np.std(tau)  # the choice explains the effect's heterogeneity, not a constant


def test_train_puts_selection_cards_in_the_model_card(history):
    from causal.train import train
    from tests.causal.conftest import SMALL

    result = train(history.frame.head(1000), registry=None, model_config=SMALL, run_refutation=False,
                   holdout_fraction=0.0, select_estimator=True, selection_rows=400)
    cards = result.metrics["estimator_selection"]
    assert set(cards) == {"wait vs reboot", "redeploy vs reboot", "reimage vs reboot", "repair vs reboot"}
    for card in cards.values():
        assert card.get("chosen") and len(card["candidates"]) == 6


class _FixedEffect:
    """A 'fitted' CATE model whose effect is a fixed function of x (fit learns nothing)."""

    def __init__(self, sign: float) -> None:
        self.sign = sign

    def fit(self, Y, T, *, X):
        return self

    def const_marginal_effect(self, X):
        return (self.sign * 3.0 * np.asarray(X)[:, 0]).reshape(-1, 1)


def _planted(n: int = 1500, seed: int = 0):
    """tau(x) = 3 x0 on most rows; the rows a single 30% validation split would score carry -tau.

    The single split then sees only the odd rows and prefers the decoy; every cross-fitted fold
    holds about 30% odd rows and 70% regular ones, so the mean over folds prefers the truth.
    """
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 1]))).astype(int)
    _, validation = train_test_split(np.arange(n), test_size=0.3, stratify=t, random_state=0)
    sign = np.ones(n)
    sign[validation] = -1.0
    y = X[:, 1] + sign * 3.0 * X[:, 0] * t + rng.normal(size=n)
    candidates = {"truth": lambda: _FixedEffect(1.0), "decoy": lambda: _FixedEffect(-1.0)}
    return X, t, y, candidates


def test_a_single_split_is_misled_where_cross_fitted_folds_are_not():
    X, t, y, candidates = _planted()
    single = EstimatorSelector(candidates=candidates, seed=0, folds=1, refit_on_all=False).fit(y, t, X=X)
    assert single.card.chosen == "decoy"
    crossed = EstimatorSelector(candidates=candidates, seed=0, folds=3, refit_on_all=False).fit(y, t, X=X)
    assert crossed.card.chosen == "truth"
    # the truth wins on every fold, not only on average
    folds = crossed.card.fold_scores
    assert all(a > b for a, b in zip(folds["truth"], folds["decoy"], strict=True))


def test_cross_fitted_selection_scores_every_row_once_and_averages_the_folds():
    rng = np.random.default_rng(3)
    n = 900
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    y = (1.0 + 2.0 * X[:, 1]) * t + X[:, 0] + rng.normal(size=n)
    candidates = {n: f for n, f in default_candidates(seed=0, rounds=30, trees=40).items()
                  if n in ("linear_dml", "t_learner_gb")}
    selector = EstimatorSelector(candidates=candidates, seed=0, folds=3, refit_on_all=False).fit(y, t, X=X)
    card = selector.card.to_dict()
    assert card["folds"] == 3 and card["validation_rows"] == n
    assert len(selector.folds_) == 3
    scored = np.sort(np.concatenate([va for va, _, _ in selector.folds_]))
    np.testing.assert_array_equal(scored, np.arange(n))   # the validation folds partition the rows
    for c in card["candidates"]:
        assert len(c["fold_scores"]) == 3
        assert c["score"] == pytest.approx(np.mean(c["fold_scores"]))
    # every candidate is fit and scored on every fold
    for va, _, fitted in selector.folds_:
        assert set(fitted) == set(candidates)
        assert len(va) in (n // 3, n // 3 + 1)
