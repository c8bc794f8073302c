"""The effect model over the event table (Deoxys' estimator, with the family chosen per data set).

Effects of every action on VM downtime *relative to the legacy default action* (reboot), per
node, with intervals. The estimator is `causal.estimation.ServedEstimator`: by default it selects
among CATE families (the tuned causal forest, econml's forest defaults, linear DML, DR, T and X
learners) by out-of-sample R-loss, serves the winner refit on all rows, and calibrates its
intervals on a semi-synthetic twin of the training data. Propensities P(action | node) tell the
policy when a node lies outside the support of the logged data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from causal.data import (
    ACTIONS,
    FEATURE_NAMES,
    OUTCOME,
    TREATMENT,
    Imputation,
    featurize,
    missing_mask,
)
from causal.estimation import ServedEstimator
from causal.model_config import ModelConfig, nuisance_models

__all__ = ["EffectTable", "MitigationEffectModel", "ModelConfig", "nuisance_models", "served_effects"]


@dataclass
class EffectTable:
    """Per-node effects of every action vs the baseline action, columns in ACTIONS order.

    effect[i, k] is the predicted change of VM downtime (minutes) if node i gets ACTIONS[k]
    instead of the baseline (0 for the baseline itself); lower/upper is the (1-alpha) interval.
    """

    effect: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    propensity: np.ndarray
    baseline: str
    alpha: float


class MitigationEffectModel:
    """Fit on validated events, then `effects(frame)` for any nodes (features only)."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        if self.config.baseline not in ACTIONS:
            raise ValueError(f"baseline {self.config.baseline!r} not in {ACTIONS}")
        self.categories = [self.config.baseline, *(a for a in ACTIONS if a != self.config.baseline)]
        self.estimator: ServedEstimator | None = None
        self.capacity_cost: dict[str, float] = {}
        self.n_train = 0
        self.ate: dict[str, float] = {}
        self.untrained_actions: list[str] = []
        self.imputation = Imputation()

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """X for these rows: missing values imputed as declared, plus the missing-indicator columns."""
        imputation: Imputation | None = getattr(self, "imputation", None)
        if imputation is None:  # a version stored before missing values were handled
            absent = missing_mask(frame)
            if absent.to_numpy().any():
                names = [n for n in absent.columns if absent[n].any()]
                raise ValueError(f"features {names} are missing and this model version declares no "
                                 "imputation (retrain it)")
            return featurize(frame)
        X = featurize(imputation.apply(frame))
        if not imputation.indicators:
            return X
        absent = missing_mask(frame)
        return np.column_stack([X, *(absent[n].to_numpy(float) for n in imputation.indicators)])

    @property
    def trained_actions(self) -> list[str]:
        """Actions with logged events (ACTIONS order); only these are ever recommended."""
        return [a for a in ACTIONS if a in self.categories]

    @property
    def fitted(self) -> bool:
        return self.estimator is not None

    def fit(self, frame: pd.DataFrame) -> MitigationEffectModel:
        """Fit the served estimator (selected family, calibrated intervals) on logged events.

        Actions with no logged events are left out (their effects are not identified): the model
        trains on the rest, lists them in `untrained_actions`, and `effects` gives them no
        estimate (NaN) so no policy can pick them. The baseline must have events: every effect is
        measured against it.
        """
        present = set(frame[TREATMENT])
        if self.config.baseline not in present:
            raise ValueError(f"no logged events for the baseline action {self.config.baseline!r}: "
                             "effects are measured against it")
        self.untrained_actions = [a for a in ACTIONS if a not in present]
        self.categories = [self.config.baseline,
                           *(a for a in ACTIONS if a != self.config.baseline and a in present)]
        if len(self.categories) < 2:
            raise ValueError(f"only {self.categories} logged: no action to compare")
        self.imputation = Imputation.fit(frame)
        X = self.matrix(frame)
        self.estimator = fit_served(frame[OUTCOME].to_numpy(float), frame[TREATMENT], X,
                                    categories=self.categories, config=self.config)
        self.capacity_cost = {a: float(frame.loc[frame[TREATMENT] == a, "capacity_out_hours"].mean())
                              for a in self.categories}
        self.n_train = len(frame)
        cme = self.estimator.const_marginal_effect(X)
        self.ate = {self.config.baseline: 0.0}
        self.ate.update({a: float(cme[:, j].mean()) for j, a in enumerate(self.categories[1:])})
        return self

    def _check(self) -> ServedEstimator:
        if self.estimator is None:
            raise RuntimeError("model is not fitted")
        return self.estimator

    def propensity(self, X: np.ndarray) -> np.ndarray:
        """P(action | node) under the logging policy, columns in ACTIONS order."""
        out = np.zeros((len(X), len(ACTIONS)))
        out[:, [ACTIONS.index(a) for a in self.categories]] = self._check().propensity(X)
        return out

    def effects(self, frame: pd.DataFrame, *, alpha: float = 0.1) -> EffectTable:
        """Effects, calibrated intervals and propensities of every action for each node (ACTIONS order)."""
        X = self.matrix(frame)
        effect, lower, upper = served_effects(self._check(), X, categories=self.categories,
                                              actions=ACTIONS, alpha=alpha)
        propensity = self.propensity(X) if len(X) else np.zeros((0, len(ACTIONS)))
        return EffectTable(effect, lower, upper, propensity, self.config.baseline, alpha)

    def point_effects(self, frame: pd.DataFrame) -> np.ndarray:
        """Point effects only (no intervals), columns in ACTIONS order, NaN for untrained actions."""
        est = self._check()
        X = self.matrix(frame)
        effect = np.full((len(X), len(ACTIONS)), np.nan)
        effect[:, ACTIONS.index(self.config.baseline)] = 0.0
        if len(X):
            cme = est.const_marginal_effect(X)
            for j, action in enumerate(self.categories[1:]):
                effect[:, ACTIONS.index(action)] = cme[:, j]
        return effect

    def contrast_interval(self, frame: pd.DataFrame, *, from_actions: np.ndarray,
                          to_actions: np.ndarray, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray,
                                                                               np.ndarray]:
        """Effect of switching each node from `from_actions[i]` to `to_actions[i]`, with interval.

        Needed because the interval of a difference of two non-baseline effects is not the
        difference of their intervals (`ServedEstimator.contrast` combines their standard errors).
        """
        est = self._check()
        code = {a: i for i, a in enumerate(self.categories)}
        T0 = np.array([code[str(a)] for a in from_actions], dtype=np.int64)
        T1 = np.array([code[str(a)] for a in to_actions], dtype=np.int64)
        return est.contrast(self.matrix(frame), T0=T0, T1=T1, alpha=alpha)

    def metadata(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "categories": self.categories,
                "n_train": self.n_train, "ate_vs_baseline": self.ate,
                "capacity_cost_hours": self.capacity_cost,
                "features": [*FEATURE_NAMES, *(f"{n}_missing" for n in self.imputation.indicators)],
                "missing_values": getattr(self, "imputation", Imputation()).to_dict(),
                "untrained_actions": self.untrained_actions,
                "estimator": None if self.estimator is None else self.estimator.card()}


def fit_served(Y: np.ndarray, treatment: Any, X: np.ndarray, *, categories: list[str],
               config: ModelConfig) -> ServedEstimator:
    """The fit step every model shares: action names -> codes (baseline 0), then ServedEstimator.fit."""
    code = {a: i for i, a in enumerate(categories)}
    T = np.array([code[str(a)] for a in np.asarray(treatment, dtype=object)], dtype=np.int64)
    return ServedEstimator(config).fit(np.asarray(Y, float), T, X=X)


def served_effects(estimator: ServedEstimator, X: np.ndarray, *, categories: list[str],
                   actions: list[str] | tuple[str, ...], alpha: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(effect, lower, upper) with one column per declared action: 0 for the baseline (categories[0]),
    NaN for actions without data (never chosen), the served estimate and interval for the rest."""
    n = len(X)
    effect, lower, upper = (np.full((n, len(actions)), np.nan) for _ in range(3))
    k0 = list(actions).index(categories[0])
    effect[:, k0] = lower[:, k0] = upper[:, k0] = 0.0
    if n:
        point, lo, hi = estimator.interval(X, alpha=alpha)
        for j, action in enumerate(categories[1:]):
            k = list(actions).index(action)
            effect[:, k], lower[:, k], upper[:, k] = point[:, j], lo[:, j], hi[:, j]
    return effect, lower, upper
