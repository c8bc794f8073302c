"""The effect model: double ML + causal forest over the event table (Deoxys' estimator).

econml's CausalForestDML with a discrete multi-valued treatment: the nuisance models learn the
outcome E[Y|X] and the action propensities P(T|X) with cross-fitting, and the honest forest
estimates, for every node, the effect of each action on VM downtime *relative to the legacy
default action* (reboot), with confidence intervals. A separate propensity classifier (fit on
all rows) tells the policy when a node lies outside the support of the logged data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from econml.dml import CausalForestDML
from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LassoCV, LogisticRegressionCV
from threadpoolctl import threadpool_limits

from causal.data import (
    ACTIONS,
    FEATURE_NAMES,
    LEGACY_DEFAULT_ACTION,
    OUTCOME,
    TREATMENT,
    Imputation,
    featurize,
    missing_mask,
)


@dataclass
class ModelConfig:
    """Knobs of the estimator. `nuisance` picks the first-stage models unless explicit ones are given."""

    nuisance: str = "hgb"               # "hgb" | "lgbm" | "forest" | "linear"
    nuisance_max_iter: int = 100         # boosting rounds for "hgb"
    n_estimators: int = 200              # causal forest trees (multiple of subforest_size=4)
    # Small leaves + 30% of rows per tree: with larger leaves (40) the forest smoothed the sharp
    # effect heterogeneity away and its 90% intervals covered only ~50% of the true effects on
    # the simulator; 5 / 0.3 gives ~90% coverage at 100k rows and fits in about a minute.
    min_samples_leaf: int = 5
    max_depth: int | None = None
    max_samples: float = 0.3             # share of rows per tree (the forest dominates fit time)
    max_features: float | str = 0.5      # share of features tried per split
    cv: int = 2
    baseline: str = LEGACY_DEFAULT_ACTION
    random_state: int = 0
    n_jobs: int = 2
    # OpenMP threads of the gradient-boosting nuisances. 1 by default: on a small shared machine
    # spinning OpenMP threads oversubscribe the cores and make fits several times slower.
    omp_threads: int | None = 1
    model_y: Any = field(default=None, repr=False)   # explicit sklearn regressor
    model_t: Any = field(default=None, repr=False)   # explicit sklearn classifier

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_y"] = None if self.model_y is None else repr(self.model_y)
        data["model_t"] = None if self.model_t is None else repr(self.model_t)
        return data


def nuisance_models(config: ModelConfig) -> tuple[Any, Any]:
    """(outcome regressor, treatment classifier) for the first stage."""
    if config.model_y is not None and config.model_t is not None:
        return clone(config.model_y), clone(config.model_t)
    seed = config.random_state
    if config.nuisance == "hgb":
        reg = HistGradientBoostingRegressor(max_iter=config.nuisance_max_iter, learning_rate=0.1,
                                            min_samples_leaf=40, random_state=seed)
        clf = HistGradientBoostingClassifier(max_iter=config.nuisance_max_iter, learning_rate=0.1,
                                             min_samples_leaf=40, random_state=seed)
    elif config.nuisance == "lgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor  # econml depends on lightgbm

        # typed as Any: LightGBM's stubs give every keyword one narrow type, a dict of mixed values fails them
        common: dict[str, Any] = dict(n_estimators=config.nuisance_max_iter, learning_rate=0.1, num_leaves=31,
                                      min_child_samples=40, n_jobs=config.n_jobs, random_state=seed, verbose=-1)
        reg, clf = LGBMRegressor(**common), LGBMClassifier(**common)
    elif config.nuisance == "forest":
        reg = RandomForestRegressor(n_estimators=100, min_samples_leaf=20, n_jobs=config.n_jobs,
                                    random_state=seed)
        clf = RandomForestClassifier(n_estimators=100, min_samples_leaf=20, n_jobs=config.n_jobs,
                                     random_state=seed)
    elif config.nuisance == "linear":
        reg = LassoCV(cv=3, random_state=seed)
        clf = LogisticRegressionCV(cv=3, max_iter=2000)
    else:
        raise ValueError(f"unknown nuisance {config.nuisance!r}")
    return (clone(config.model_y) if config.model_y is not None else reg,
            clone(config.model_t) if config.model_t is not None else clf)


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
        self.estimator: CausalForestDML | None = None
        self.propensity_models: list[Any] = []
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
        """Fit nuisance models, the causal forest and the propensity model on logged events.

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
        cfg = self.config
        self.imputation = Imputation.fit(frame)
        X = self.matrix(frame)
        T = frame[TREATMENT].to_numpy(dtype=object)
        Y = frame[OUTCOME].to_numpy(dtype=float)
        model_y, model_t = nuisance_models(cfg)
        n_estimators = max(4, int(cfg.n_estimators) // 4 * 4)
        self.estimator = CausalForestDML(
            model_y=model_y, model_t=model_t, discrete_treatment=True, categories=self.categories,
            cv=cfg.cv, n_estimators=n_estimators, min_samples_leaf=cfg.min_samples_leaf,
            max_depth=cfg.max_depth, max_samples=cfg.max_samples, max_features=cfg.max_features,
            inference=True,
            n_jobs=cfg.n_jobs, random_state=cfg.random_state)
        with threadpool_limits(limits=cfg.omp_threads):
            self.estimator.fit(Y, T, X=X)
        # the cross-fitted treatment models already estimate P(T|X): average them instead of
        # paying for another multi-class fit (classes are indices into self.categories)
        self.propensity_models = [m for fold in self.estimator.models_t for m in fold]
        self.capacity_cost = {a: float(frame.loc[frame[TREATMENT] == a, "capacity_out_hours"].mean())
                              for a in self.categories}
        self.n_train = len(frame)
        cme = self.estimator.const_marginal_effect(X).reshape(len(X), -1)
        self.ate = {self.config.baseline: 0.0}
        self.ate.update({a: float(cme[:, j].mean()) for j, a in enumerate(self.categories[1:])})
        return self

    def _check(self) -> CausalForestDML:
        if self.estimator is None:
            raise RuntimeError("model is not fitted")
        return self.estimator

    def propensity(self, X: np.ndarray) -> np.ndarray:
        """P(action | node) under the logging policy, columns in ACTIONS order."""
        out = np.zeros((len(X), len(ACTIONS)))
        columns = [ACTIONS.index(a) for a in self.categories]
        for model in self.propensity_models:
            with threadpool_limits(limits=self.config.omp_threads):
                proba = model.predict_proba(X)
            out[:, [columns[int(c)] for c in model.classes_]] += proba
        return out / max(1, len(self.propensity_models))

    def effects(self, frame: pd.DataFrame, *, alpha: float = 0.1) -> EffectTable:
        """Effects, intervals and propensities of every action for each node (ACTIONS order)."""
        est = self._check()
        X = self.matrix(frame)
        n, K = len(X), len(ACTIONS)
        effect = np.zeros((n, K))
        lower = np.zeros((n, K))
        upper = np.zeros((n, K))
        for action in self.untrained_actions:  # no data, no estimate
            k = ACTIONS.index(action)
            effect[:, k] = lower[:, k] = upper[:, k] = np.nan
        if n:
            cme = est.const_marginal_effect(X).reshape(n, -1)
            lo, hi = est.const_marginal_effect_interval(X, alpha=alpha)
            lo, hi = lo.reshape(n, -1), hi.reshape(n, -1)
            for j, action in enumerate(self.categories[1:]):
                k = ACTIONS.index(action)
                effect[:, k], lower[:, k], upper[:, k] = cme[:, j], lo[:, j], hi[:, j]
        propensity = self.propensity(X) if n else np.zeros((0, K))
        return EffectTable(effect, lower, upper, propensity, self.config.baseline, alpha)

    def point_effects(self, frame: pd.DataFrame) -> np.ndarray:
        """Point effects only (no intervals), columns in ACTIONS order, NaN for untrained actions."""
        est = self._check()
        X = self.matrix(frame)
        effect = np.full((len(X), len(ACTIONS)), np.nan)
        effect[:, ACTIONS.index(self.config.baseline)] = 0.0
        if len(X):
            cme = est.const_marginal_effect(X).reshape(len(X), -1)
            for j, action in enumerate(self.categories[1:]):
                effect[:, ACTIONS.index(action)] = cme[:, j]
        return effect

    def contrast_interval(self, frame: pd.DataFrame, *, from_actions: np.ndarray,
                          to_actions: np.ndarray, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray,
                                                                               np.ndarray]:
        """Effect of switching each node from `from_actions[i]` to `to_actions[i]`, with interval.

        Needed because the interval of a difference of two non-baseline effects is not the
        difference of their intervals (econml accounts for their covariance).
        """
        est = self._check()
        X = self.matrix(frame)
        T0 = np.asarray(from_actions, dtype=object)
        T1 = np.asarray(to_actions, dtype=object)
        point = est.effect(X, T0=T0, T1=T1).reshape(-1)
        lo, hi = est.effect_interval(X, T0=T0, T1=T1, alpha=alpha)
        return point, lo.reshape(-1), hi.reshape(-1)

    def metadata(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "categories": self.categories,
                "n_train": self.n_train, "ate_vs_baseline": self.ate,
                "capacity_cost_hours": self.capacity_cost,
                "features": [*FEATURE_NAMES, *(f"{n}_missing" for n in self.imputation.indicators)],
                "missing_values": getattr(self, "imputation", Imputation()).to_dict(),
                "untrained_actions": self.untrained_actions}
