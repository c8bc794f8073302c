"""Estimator selection by out-of-sample R-loss; the card lists candidates, scores, choice (issue 12, part 2)."""

from __future__ import annotations

import numpy as np

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
