"""Offline evaluation of a policy from logged data alone (doubly robust off-policy evaluation).

WHY: before trusting a new model on a fleet, estimate how much downtime its policy *would* have
caused on past episodes. The doubly robust estimator combines an outcome model mu(x, a) and the
logging propensities e(a|x); it stays unbiased if either is right. Both nuisances are
cross-fitted so an event never scores itself. On simulated data the estimate can be checked
against the true potential outcomes (see bench/causal.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from causal.data import ACTIONS, OUTCOME, TREATMENT, action_index, featurize


@dataclass
class PolicyValue:
    """Estimated mean outcome of a policy on logged events, with a standard error."""

    dr: float
    dr_se: float
    ips: float
    direct: float
    n: int
    clip: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _onehot(index: np.ndarray) -> np.ndarray:
    return np.eye(len(ACTIONS))[index]


def dr_policy_value(frame: pd.DataFrame, policy_actions: np.ndarray, *, outcome: str = OUTCOME,
                    folds: int = 2, clip: float = 0.01, seed: int = 0,
                    omp_threads: int | None = 1) -> PolicyValue:
    """Doubly robust, IPS and direct-method estimates of E[Y(policy)] on logged `frame`.

    Propensities are clipped at `clip` from below (bias for variance, standard practice).
    """
    X = featurize(frame)
    taken = action_index(frame[TREATMENT])
    target = action_index(policy_actions)
    y = frame[outcome].to_numpy(float)
    n, K = len(X), len(ACTIONS)
    mu_target = np.zeros(n)
    mu_taken = np.zeros(n)
    prop_taken = np.zeros(n)
    with threadpool_limits(limits=omp_threads):
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
            reg = HistGradientBoostingRegressor(max_iter=150, min_samples_leaf=40, random_state=seed)
            reg.fit(np.hstack([X[train], _onehot(taken[train])]), y[train])
            mu_target[test] = reg.predict(np.hstack([X[test], _onehot(target[test])]))
            mu_taken[test] = reg.predict(np.hstack([X[test], _onehot(taken[test])]))
            clf = HistGradientBoostingClassifier(max_iter=100, min_samples_leaf=40, random_state=seed)
            clf.fit(X[train], taken[train])
            proba = np.full((len(test), K), 1e-6)
            proba[:, clf.classes_] = clf.predict_proba(X[test])
            prop_taken[test] = proba[np.arange(len(test)), taken[test]]
    match = (taken == target).astype(float)
    weight = match / np.maximum(prop_taken, clip)
    dr_terms = mu_target + weight * (y - mu_taken)
    return PolicyValue(dr=float(dr_terms.mean()), dr_se=float(dr_terms.std(ddof=1) / np.sqrt(n)),
                       ips=float((weight * y).mean()), direct=float(mu_target.mean()), n=n, clip=clip)
