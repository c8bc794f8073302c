"""What the interval calibration's semi-synthetic twin plants as the known effect (issue 12, item 3).

`causal.estimation.ServedEstimator` calibrates its intervals on a twin of the training data: same
covariates and logged actions, a boosted baseline mu0(x), a planted effect, and the real residuals
permuted within each action as noise (`twin_outcome`). The served family is refit on the twin, and
the factor on its standard error that covers the planted effect at the calibration level is kept.
How rough the planted effect is decides the factor:

- "estimate": the served estimate itself. It is smoother than the truth (the family already
  smoothed the data once), a smooth planted effect is easy to recover, and the twin under-states
  the error: 65-86% coverage of 90% intervals on the simulator's semi-synthetic settings.
- "twicing" (default): 2 * reference - refit(reference), where refit(reference) is the family's own
  estimate on a twin that plants the reference. If the family maps a truth tau to roughly S tau,
  the reference is S tau and the refit S^2 tau, so the plant (2S - S^2) tau = tau - (I - S)^2 tau
  puts back what one pass of smoothing took away: an effect about as rough, relative to the
  reference, as the truth is relative to the estimate (Tukey's twicing / one bootstrap bias
  correction). The reference is the served estimate, except (a) for a rigid family (a linear final
  stage, `ModelConfig.calibration_rigid`): its twin built from its own estimate plants a linear
  effect it fits exactly, so its misspecification is invisible; the reference is then a flexible
  family's estimate (`ModelConfig.calibration_reference`) on the same rows, and the rigid family's
  error against that twicing plant includes what its form cannot represent; (b) on more rows than
  the twin has: the reference is refit on the twin's subsample, so reference, refit and the
  measured refit all have the same size.
- "dr_residual": the served estimate plus the part of its doubly robust residual that is signal.
  Cross-fitted DR pseudo-outcomes psi_k(x) = mu_k - mu_0 + 1[T=k](Y - mu_k)/e_k - 1[T=0](Y - mu_0)/e_0
  minus the estimate are noise + what the estimate missed; a boosted fit of that residual on x,
  made on the other fold, is shrunk by the held-out least-squares coefficient of the residual on
  it (in [0, 1]: the share of the fit that is signal, since the noise of rows a fit never saw
  averages out). Kept as an option: an unshrunk fit of those residuals over-covered everywhere
  (0.96-0.997 on the tuning seeds), and with 2,000 rows the pseudo-outcomes are so noisy that the
  share is mostly near 0, i.e. the plain estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold

PLANTS = ("twicing", "dr_residual", "estimate")


def twin_outcome(X: np.ndarray, T: np.ndarray, Y: np.ndarray, planted: np.ndarray, *, mu0_model: Any,
                 seed: int) -> np.ndarray:
    """Y of a twin: boosted baseline mu0(x) + the planted effect of the logged action + permuted residuals.

    `planted` is (n, K-1), the effect of codes 1..K-1 vs code 0; residuals are permuted within
    each action so the noise keeps each action's spread but loses any link to x.
    """
    n = len(T)
    taken = np.column_stack([np.zeros(n), planted])[np.arange(n), T]
    mu0 = clone(mu0_model).fit(X, Y - taken).predict(X)
    resid = Y - mu0 - taken
    rng = np.random.default_rng(seed)
    noise = np.empty(n)
    for code in np.unique(T):
        where = np.flatnonzero(T == code)
        noise[where] = resid[rng.permutation(where)]
    return mu0 + taken + noise


def effects(fitted: Any, X: np.ndarray) -> np.ndarray:
    return np.asarray(fitted.const_marginal_effect(X), float).reshape(len(X), -1)


def twicing_plant(reference: np.ndarray, X: np.ndarray, T: np.ndarray, Y: np.ndarray, *,
                  make_reference: Callable[[], Any], mu0_model: Any, seed: int) -> np.ndarray:
    """2 * reference - (the reference family's estimate on a twin that plants the reference)."""
    y_twin = twin_outcome(X, T, Y, reference, mu0_model=mu0_model, seed=seed)
    refit = effects(make_reference().fit(y_twin, T, X=X), X)
    return 2.0 * reference - refit


def dr_residual_plant(estimate: np.ndarray, X: np.ndarray, T: np.ndarray, Y: np.ndarray, *, seed: int,
                      rounds: int = 100, clip: float = 0.02) -> tuple[np.ndarray, list[float]]:
    """(planted, signal share per effect): estimate + share * held-out fit of the DR residual."""
    n, n_effects = estimate.shape
    codes = n_effects + 1
    mu = np.zeros((n, codes))
    prop = np.zeros((n, codes))
    counts = np.bincount(T, minlength=codes)
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed) if counts.min() >= 2 else None
    splits = list(folds.split(X, T)) if folds is not None else [(np.arange(n), np.arange(n))]
    reg = HistGradientBoostingRegressor(max_iter=rounds, min_samples_leaf=20, random_state=seed)
    clf = HistGradientBoostingClassifier(max_iter=rounds, min_samples_leaf=20, random_state=seed)
    for train, test in splits:
        model = clone(clf).fit(X[train], T[train])
        prop[np.ix_(test, model.classes_.astype(int))] = model.predict_proba(X[test])
        for code in range(codes):
            rows = train[T[train] == code]
            mu[test, code] = clone(reg).fit(X[rows], Y[rows]).predict(X[test]) if len(rows) else Y[train].mean()
    prop = np.clip(prop, clip, 1.0)
    r = Y - mu[np.arange(n), T]
    planted = estimate.copy()
    shares: list[float] = []
    smooth = HistGradientBoostingRegressor(max_iter=rounds, learning_rate=0.05, min_samples_leaf=50,
                                           max_depth=3, random_state=seed)
    for k in range(1, codes):
        on, off = T == k, T == 0
        psi = mu[:, k] - mu[:, 0] + on * r / prop[:, k] - off * r / prop[:, 0]
        resid = psi - estimate[:, k - 1]
        fitted = np.zeros(n)
        for train, test in splits:  # held-out: a fit never predicts the rows it saw
            fitted[test] = clone(smooth).fit(X[train], resid[train]).predict(X[test])
        # the share of the held-out fit that is signal: least squares of the residual on it, in
        # [0, 1] (noise in psi is independent of a fit made on other rows, so it averages out)
        power = float(np.sum(fitted ** 2))
        share = float(np.clip(np.sum(resid * fitted) / power, 0.0, 1.0)) if power > 0 else 0.0
        planted[:, k - 1] = estimate[:, k - 1] + share * fitted
        shares.append(share)
    return planted, shares
