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


def dr_policy_value(frame: pd.DataFrame, policy_actions: np.ndarray, *, outcome: str = OUTCOME,
                    folds: int = 2, clip: float = 0.01, seed: int = 0,
                    omp_threads: int | None = 1, min_leaf: int = 20) -> PolicyValue:
    """Doubly robust, IPS and direct-method estimates of E[Y(policy)] on logged `frame`.

    Propensities are clipped at `clip` from below (bias for variance, standard practice) and the
    importance weights are self-normalized, so `ips` is the self-normalized IPS estimate.
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
            # one outcome model per action (a "T-learner"): a single model with the action as
            # one more feature lets trees blur the action-by-feature interactions, and the
            # direct-method part of DR then carries that bias into the estimate
            mu = np.zeros((len(test), K))
            for k in range(K):
                rows = train[taken[train] == k]
                if len(rows) < 2 * min_leaf:
                    mu[:, k] = y[train].mean() if len(rows) == 0 else y[rows].mean()
                    continue
                reg = HistGradientBoostingRegressor(max_iter=150, min_samples_leaf=min_leaf,
                                                    random_state=seed)
                mu[:, k] = reg.fit(X[rows], y[rows]).predict(X[test])
            mu_target[test] = mu[np.arange(len(test)), target[test]]
            mu_taken[test] = mu[np.arange(len(test)), taken[test]]
            # strongly regularized: a flexible classifier learns the near-deterministic legacy
            # rule and returns tiny probabilities for the off-rule actions the evaluated policy
            # takes, which blew the importance weights up (mean weight ~2 instead of 1)
            clf = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.05, min_samples_leaf=100,
                                                 l2_regularization=1.0, random_state=seed)
            clf.fit(X[train], taken[train])
            proba = np.full((len(test), K), 1e-6)
            proba[:, clf.classes_] = clf.predict_proba(X[test])
            prop_taken[test] = proba[np.arange(len(test)), taken[test]]
    match = (taken == target).astype(float)
    weight = match / np.maximum(prop_taken, clip)
    # self-normalized weights (mean 1): the estimate stays in the range of the outcomes even when
    # a few estimated propensities are too small (Swaminathan & Joachims 2015)
    weight = weight / max(weight.mean(), 1e-12)
    dr_terms = mu_target + weight * (y - mu_taken)
    return PolicyValue(dr=float(dr_terms.mean()), dr_se=float(dr_terms.std(ddof=1) / np.sqrt(n)),
                       ips=float((weight * y).mean()), direct=float(mu_target.mean()), n=n, clip=clip)
