"""Choose the CATE estimator by out-of-sample R-loss instead of committing to one family.

WHY: on public semi-synthetic benchmarks the causal forest alone was beaten by a plain T-learner
and by econml's defaults (issue 12); no single family wins everywhere. `EstimatorSelector` fits a
few candidates on a training split, scores each on a validation split with econml's RScorer
(1 - R-loss / R-loss of a constant effect; higher is better, negative = worse than a constant),
keeps the best, and returns a card listing every candidate, its score and the choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from econml.dml import CausalForestDML, LinearDML
from econml.dr import DRLearner
from econml.metalearners import TLearner, XLearner
from econml.score import RScorer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits


def _reg(seed: int, rounds: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=rounds, min_samples_leaf=20, random_state=seed)


def _clf(seed: int, rounds: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=rounds, min_samples_leaf=20, random_state=seed)


def default_candidates(*, seed: int = 0, rounds: int = 100, trees: int = 100
                       ) -> dict[str, Callable[[], Any]]:
    """Factories of the candidate estimators (discrete treatment), all with boosted nuisances."""
    return {
        "causal_forest_dml": lambda: CausalForestDML(
            model_y=_reg(seed, rounds), model_t=_clf(seed, rounds), discrete_treatment=True,
            n_estimators=max(4, trees // 4 * 4), min_samples_leaf=5, cv=2, random_state=seed, n_jobs=1),
        # econml's own defaults (linear nuisances, 100 trees): a strong baseline on small data
        "causal_forest_dml_econml_defaults": lambda: CausalForestDML(
            discrete_treatment=True, random_state=seed, n_jobs=1),
        "linear_dml": lambda: LinearDML(model_y=_reg(seed, rounds), model_t=_clf(seed, rounds),
                                        discrete_treatment=True, cv=2, random_state=seed),
        "dr_learner": lambda: DRLearner(model_propensity=_clf(seed, rounds),
                                        model_regression=_reg(seed, rounds),
                                        model_final=_reg(seed, rounds), cv=2, random_state=seed),
        "t_learner_gb": lambda: TLearner(models=_reg(seed, rounds)),
        "x_learner_gb": lambda: XLearner(models=_reg(seed, rounds),
                                         propensity_model=_clf(seed, rounds)),
    }


@dataclass
class SelectionCard:
    """What the model card shows: every candidate's validation score and fit time, and the choice."""

    scores: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    chosen: str | None = None
    # convex weights minimising the validation R-loss of the weighted mix of candidates (stacking)
    weights: dict[str, float] = field(default_factory=dict)
    scorer: str = "econml RScorer (1 - R-loss / constant-effect R-loss) on a validation split"
    validation_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "validation_rows": self.validation_rows,
                "candidates": [{"name": n, "score": self.scores.get(n),
                                "fit_seconds": self.fit_seconds.get(n), "error": self.errors.get(n)}
                               for n in {**self.fit_seconds, **self.errors}],
                "chosen": self.chosen, "stack_weights": self.weights}


def stack_weights(scorer: RScorer, fitted: dict[str, Any]) -> dict[str, float]:
    """Convex weights w (w >= 0, sum 1) minimising the R-loss of sum_k w_k tau_k on the scorer's rows.

    WHY: picking the single best score throws away candidates that are nearly as good and makes
    the choice flip between families from one sample to the next (selection noise); the R-loss is
    quadratic in the mix, so the best convex mix of the candidates is a small constrained least
    squares on the scorer's cross-fitted residuals (Y - E[Y|x], T - E[T|x]).
    """
    from scipy.optimize import minimize

    names = sorted(fitted)
    Y_res, T_res = scorer.lineardml_._cached_values.nuisances
    X = scorer.lineardml_._cached_values.W[:, :scorer.dx_]
    Y_res = np.asarray(Y_res, float).reshape(len(X), -1)[:, 0]
    T_res = np.asarray(T_res, float).reshape(len(X), -1)
    columns = []
    for name in names:
        effects = np.asarray(fitted[name].const_marginal_effect(X), float).reshape(len(X), -1)
        columns.append(np.sum(effects * T_res, axis=1))
    P = np.column_stack(columns)
    k = len(names)

    def loss(w: np.ndarray) -> float:
        return float(np.mean((Y_res - P @ w) ** 2))

    start = np.full(k, 1.0 / k)
    result = minimize(loss, start, method="SLSQP", bounds=[(0.0, 1.0)] * k,
                      constraints=[{"type": "eq", "fun": lambda w: float(np.sum(w) - 1.0)}])
    w = np.clip(result.x if result.success else start, 0.0, None)
    w = w / w.sum()
    return {name: round(float(v), 4) for name, v in zip(names, w, strict=True)}


class EstimatorSelector:
    """Fit candidates, score them out of sample, keep the best (fit/effect like an estimator)."""

    def __init__(self, *, candidates: dict[str, Callable[[], Any]] | None = None,
                 validation_fraction: float = 0.3, refit_on_all: bool = True, seed: int = 0,
                 omp_threads: int | None = 1) -> None:
        self.candidates = candidates or default_candidates(seed=seed)
        self.validation_fraction = validation_fraction
        self.refit_on_all = refit_on_all
        self.seed = seed
        self.omp_threads = omp_threads
        self.card = SelectionCard()
        self.estimator_: Any = None
        self.scorer_: RScorer | None = None
        self.fitted_: dict[str, Any] = {}

    def fit(self, Y: np.ndarray, T: np.ndarray, *, X: np.ndarray) -> EstimatorSelector:
        """Score every candidate on a stratified validation split; refit the winner on all rows."""
        Y, T, X = np.asarray(Y, float), np.asarray(T), np.asarray(X, float)
        tr, va = train_test_split(np.arange(len(Y)), test_size=self.validation_fraction,
                                  stratify=T, random_state=self.seed)
        card = SelectionCard(validation_rows=len(va))
        with threadpool_limits(limits=self.omp_threads):
            scorer = RScorer(model_y=_reg(self.seed, 100), model_t=_clf(self.seed, 100),
                             discrete_treatment=True, cv=2, random_state=self.seed)
            scorer.fit(Y[va], T[va], X=X[va])
            fitted: dict[str, Any] = {}
            for name, make in self.candidates.items():
                t0 = time.perf_counter()
                try:
                    model = make().fit(Y[tr], T[tr], X=X[tr])
                    card.scores[name] = float(scorer.score(model))
                    fitted[name] = model
                except Exception as exc:  # one broken candidate must not end the selection
                    card.errors[name] = f"{type(exc).__name__}: {exc}"
                card.fit_seconds[name] = round(time.perf_counter() - t0, 2)
            if not card.scores:
                raise RuntimeError(f"every candidate failed: {card.errors}")
            card.chosen = max(card.scores, key=lambda n: card.scores[n])
            card.weights = stack_weights(scorer, fitted)
            best = fitted[card.chosen]
            if self.refit_on_all:
                best = self.candidates[card.chosen]().fit(Y, T, X=X)
        self.card, self.estimator_ = card, best
        self.scorer_, self.fitted_ = scorer, fitted  # the validation scorer and every candidate it scored
        return self

    def effect(self, X: np.ndarray) -> np.ndarray:
        """CATE of the chosen estimator (treated vs control for a binary treatment)."""
        if self.estimator_ is None:
            raise RuntimeError("selector is not fitted")
        with threadpool_limits(limits=self.omp_threads):
            return np.asarray(self.estimator_.effect(np.asarray(X, float))).reshape(-1)
