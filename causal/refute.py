"""The refutation gate run before a model version is promoted.

For each contrast "action vs baseline" (a binary treatment on the rows that got one of the two),
the gate estimates the average effect with a cross-fitted partially linear double-ML estimator
(gradient-boosted nuisances; cheap enough to refit a dozen times) and runs these checks:

* placebo treatment: K permutations of the treatment give a null distribution; an estimate whose
  own interval excludes zero must also stand out of that distribution (permutation p-value <
  alpha), otherwise its standard error is not to be trusted. An estimate whose interval covers
  zero claims no effect and passes (WHY: a true zero effect must not be refused);
* data subsets: several 80% subsets, each with its own seed; their mean estimate must stay within
  `stability_z` (default: the z of `alpha`) standard errors of the subset estimate;
* random common cause: an independent noise column added to the features, refit, same tolerance;
* dummy outcome: the outcome replaced by a permutation of itself (no effect by construction); the
  mean dummy estimate must not be significant at `alpha`;
* unobserved-confounder sensitivity: the E-value (VanderWeele & Ding 2017, with the
  standardized-mean-difference approximation RR = exp(0.91 d)) of the interval bound nearest to
  zero (at level `alpha`, as everywhere in the gate) must reach `evalue_threshold`, the declared strength of hidden confounding the gate
  tolerates; an interval covering zero passes (nothing to explain away);
* outcome leakage: a feature that is (almost) the outcome itself, or features that predict it
  almost exactly out of sample, mean something measured after the action leaked in;
* negative-control outcomes (optional, columns declared in the config): pre-treatment quantities
  the action cannot affect; a significant "effect" on one is evidence of confounding that the
  features do not capture. WHY this one: sensitivity analysis alone cannot *detect* a hidden
  confounder (a biased estimate is often a large, robust-looking one); a negative control can.

Tolerances are in standard errors and p-values, never relative to the estimate: the old gate's
tolerances grew with the estimate, so a large biased estimate passed and a correct zero failed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from causal.data import ACTIONS, LEGACY_DEFAULT_ACTION, OUTCOME, TREATMENT, featurize
from causal.model import ModelConfig


@dataclass
class RefuteConfig:
    """Size of the gate and its declared thresholds."""

    contrasts: tuple[str, ...] | None = None   # actions to test vs baseline; None = all
    sample_size: int = 4000                    # rows per contrast (subsampled)
    num_simulations: int = 3                   # subsets / random-common-cause / dummy-outcome runs
    placebo_permutations: int = 200
    n_estimators: int = 60                     # boosting rounds of the gate's nuisance models
    cv: int = 2
    alpha: float = 0.01                        # significance level of placebo / dummy / controls
    # subset / random-common-cause tolerance: this many SEs of the refit estimate (None: the
    # two-sided z of `alpha`, as for every other check). 2.0 refused the simulator's good model:
    # a refit moves the DML estimate by more than its SE says (nuisance refit noise).
    stability_z: float | None = None
    evalue_threshold: float = 1.2              # hidden confounding (risk ratio) the gate tolerates
    leak_r2: float = 0.98                      # out-of-sample R^2 of outcome from features
    leak_corr: float = 0.97                    # |Spearman| of one feature with the outcome
    negative_controls: tuple[str, ...] = ()    # pre-treatment columns the action cannot affect
    random_state: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RefutationCheck:
    contrast: str
    refuter: str
    estimate: float
    new_effect: float
    tolerance: float
    passed: bool
    p_value: float | None = None
    detail: str = ""


@dataclass
class RefutationReport:
    checks: list[RefutationCheck] = field(default_factory=list)
    estimand: str = "backdoor (partially linear DML)"
    errors: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)   # the declared thresholds used

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.errors and all(c.passed for c in self.checks)

    def failed(self) -> list[str]:
        return [f"{c.contrast}:{c.refuter}" for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed()
        summary = "all refutations passed" if self.passed else (
            f"failed: {failed}" if failed else f"errors: {self.errors}")
        return {"passed": self.passed, "summary": summary, "estimand": self.estimand,
                "errors": self.errors, "checks": [asdict(c) for c in self.checks],
                "thresholds": self.config}


@dataclass(frozen=True)
class _Fit:
    theta: float
    se: float
    y_res: np.ndarray
    t_res: np.ndarray
    r2_outcome: float


class PartialLinearDML:
    """Cross-fitted partially linear DML for a binary treatment: theta = E[y~ t~] / E[t~^2].

    Small and refit-friendly on purpose: the gate refits it a dozen times per contrast.
    """

    def __init__(self, *, n_estimators: int = 60, cv: int = 2, random_state: int = 0) -> None:
        self.n_estimators, self.cv, self.random_state = n_estimators, cv, random_state

    def _folds(self, t: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        splitter = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(t)), t))

    def residualize_outcome(self, X: np.ndarray, y: np.ndarray, t: np.ndarray, *, seed: int
                            ) -> np.ndarray:
        out = np.empty(len(y))
        for train, test in self._folds(t, seed):
            reg = HistGradientBoostingRegressor(max_iter=self.n_estimators, min_samples_leaf=20,
                                                random_state=seed)
            out[test] = y[test] - reg.fit(X[train], y[train]).predict(X[test])
        return out

    def residualize_treatment(self, X: np.ndarray, t: np.ndarray, *, seed: int) -> np.ndarray:
        out = np.empty(len(t))
        for train, test in self._folds(t, seed):
            clf = HistGradientBoostingClassifier(max_iter=self.n_estimators, min_samples_leaf=20,
                                                 random_state=seed)
            p = clf.fit(X[train], t[train]).predict_proba(X[test])[:, 1]
            out[test] = t[test] - np.clip(p, 0.01, 0.99)
        return out

    @staticmethod
    def solve(y_res: np.ndarray, t_res: np.ndarray) -> tuple[float, float]:
        """(theta, standard error) from residuals, with the influence-function variance."""
        denom = float(np.mean(t_res ** 2))
        theta = float(np.mean(y_res * t_res) / denom)
        psi = (y_res - theta * t_res) * t_res / denom
        return theta, float(np.std(psi) / math.sqrt(len(psi)))

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, *, seed: int | None = None) -> _Fit:
        seed = self.random_state if seed is None else seed
        y_res = self.residualize_outcome(X, y, t, seed=seed)
        t_res = self.residualize_treatment(X, t, seed=seed)
        theta, se = self.solve(y_res, t_res)
        r2 = 1.0 - float(np.var(y_res) / max(np.var(y), 1e-12))
        return _Fit(theta, se, y_res, t_res, r2)


def e_value(bound: float, *, sd_outcome: float) -> float:
    """E-value of an effect (or CI bound) on a continuous outcome, via RR ~ exp(0.91 d)."""
    d = abs(bound) / max(sd_outcome, 1e-12)
    rr = math.exp(0.91 * d)
    return rr + math.sqrt(rr * (rr - 1.0))


def _p_two_sided(z: float) -> float:
    return float(2.0 * stats.norm.sf(abs(z)))


def refute_binary(X: np.ndarray, t: np.ndarray, y: np.ndarray, *,
                  config: RefuteConfig | None = None, contrast: str = "treated vs control",
                  negative_controls: Mapping[str, np.ndarray] | None = None,
                  omp_threads: int | None = 1) -> RefutationReport:
    """Run every check of the gate on one binary contrast (X features, t in {0,1}, y outcome).

    `omp_threads` caps the boosting models' OpenMP threads (1: a shared machine stays responsive).
    """
    cfg = config or RefuteConfig()
    report = RefutationReport(config=cfg.to_dict())
    X, t, y = np.asarray(X, float), np.asarray(t).astype(int), np.asarray(y, float)
    if len(np.unique(t)) < 2 or min(np.bincount(t, minlength=2)) < 2 * cfg.cv:
        report.errors.append(f"{contrast}: too few rows on one side of the contrast")
        return report
    with threadpool_limits(limits=omp_threads):
        _checks(X, t, y, cfg, contrast, dict(negative_controls or {}), report)
    return report


def _checks(X: np.ndarray, t: np.ndarray, y: np.ndarray, cfg: RefuteConfig, contrast: str,
            controls: dict[str, np.ndarray], report: RefutationReport) -> None:
    seed = cfg.random_state
    rng = np.random.default_rng(seed)
    est = PartialLinearDML(n_estimators=cfg.n_estimators, cv=cfg.cv, random_state=seed)
    base = est.fit(X, t, y)
    theta, se = base.theta, base.se
    z_crit = float(stats.norm.ppf(1 - cfg.alpha / 2))
    significant = abs(theta) > z_crit * se

    def add(refuter: str, new: float, tol: float, passed: bool, p: float | None = None,
            detail: str = "") -> None:
        report.checks.append(RefutationCheck(contrast, refuter, theta, float(new), float(tol),
                                             bool(passed), p, detail))

    # placebo: permutations of the treatment, y~ fixed, t~ = t_perm - mean (random => constant e)
    perms = np.empty(cfg.placebo_permutations)
    for k in range(cfg.placebo_permutations):
        tp = rng.permutation(t).astype(float)
        perms[k] = PartialLinearDML.solve(base.y_res, tp - tp.mean())[0]
    p_perm = float((1 + np.sum(np.abs(perms) >= abs(theta))) / (1 + len(perms)))
    add("placebo_treatment", float(np.mean(perms)), float(np.quantile(np.abs(perms), 1 - cfg.alpha)),
        (p_perm < cfg.alpha) if significant else True, p_perm,
        "estimate significant: must beat the permutation null" if significant
        else "no significant effect claimed")

    # data subsets with distinct seeds
    subs, sub_se = [], []
    for k in range(cfg.num_simulations):
        sub_rng = np.random.default_rng(seed + 1000 + k)
        idx = np.sort(sub_rng.choice(len(y), size=int(0.8 * len(y)), replace=False))
        refit = est.fit(X[idx], t[idx], y[idx], seed=seed + 1000 + k)
        subs.append(refit.theta)
        sub_se.append(refit.se)
    z_stab = z_crit if cfg.stability_z is None else cfg.stability_z
    tol = z_stab * float(np.mean(sub_se))
    add("data_subset", float(np.mean(subs)), tol, bool(abs(np.mean(subs) - theta) <= tol),
        detail=f"{len(subs)} subsets of 80%, estimates {np.round(subs, 3).tolist()}")

    # random common cause
    rcc = []
    for k in range(cfg.num_simulations):
        noise = np.random.default_rng(seed + 2000 + k).normal(size=(len(y), 1))
        rcc.append(est.fit(np.hstack([X, noise]), t, y, seed=seed).theta)
    tol = z_stab * se
    add("random_common_cause", float(np.mean(rcc)), tol, bool(abs(np.mean(rcc) - theta) <= tol))

    # dummy outcome: a permuted outcome has no effect by construction; t~ is reused
    dummies, dummy_se = [], []
    for k in range(cfg.num_simulations):
        yd = np.random.default_rng(seed + 3000 + k).permutation(y)
        d_theta, d_se = PartialLinearDML.solve(est.residualize_outcome(X, yd, t, seed=seed),
                                               base.t_res)
        dummies.append(d_theta)
        dummy_se.append(d_se)
    p_dummy = _p_two_sided(float(np.mean(dummies) / (np.mean(dummy_se) / math.sqrt(len(dummies)))))
    add("dummy_outcome", float(np.mean(dummies)), z_crit * float(np.mean(dummy_se)),
        p_dummy >= cfg.alpha, p_dummy)

    # unobserved confounder: E-value of the interval bound nearest to zero
    sd_y = float(np.std(y))
    bound = abs(theta) - z_crit * se   # bound nearest zero of the (1 - alpha) interval
    ev = e_value(bound, sd_outcome=sd_y) if bound > 0 else 1.0
    add("unobserved_confounder_evalue", ev, cfg.evalue_threshold,
        ev >= cfg.evalue_threshold if bound > 0 else True,
        detail=(f"E-value of the {1 - cfg.alpha:.0%} bound {bound:.3g} (sd(y)={sd_y:.3g}); threshold "
                f"{cfg.evalue_threshold}" if bound > 0 else "interval covers zero: nothing to explain away"))

    # outcome leakage: a feature that is the outcome, or features that predict it almost exactly
    corr = 0.0
    if X.shape[1]:
        ranks_y = stats.rankdata(y)
        for j in range(X.shape[1]):
            col = X[:, j]
            if np.ptp(col) > 0:
                corr = max(corr, abs(float(np.corrcoef(stats.rankdata(col), ranks_y)[0, 1])))
    leak = base.r2_outcome >= cfg.leak_r2 or corr >= cfg.leak_corr
    add("outcome_leakage", base.r2_outcome, cfg.leak_r2, not leak,
        detail=f"out-of-sample R^2 {base.r2_outcome:.3f} (max {cfg.leak_r2}), max |Spearman| of one "
               f"feature {corr:.3f} (max {cfg.leak_corr})")

    # negative-control outcomes
    for name, values in controls.items():
        nc = np.asarray(values, float)
        n_theta, n_se = PartialLinearDML.solve(est.residualize_outcome(X, nc, t, seed=seed),
                                               base.t_res)
        p_nc = _p_two_sided(n_theta / max(n_se, 1e-12))
        add(f"negative_control:{name}", n_theta, z_crit * n_se, p_nc >= cfg.alpha, p_nc)


def _contrast_arrays(frame: pd.DataFrame, action: str, baseline: str, size: int,
                     rng: np.random.Generator) -> pd.DataFrame:
    rows = frame[frame[TREATMENT].isin([action, baseline])]
    if len(rows) > size:
        rows = rows.iloc[np.sort(rng.choice(len(rows), size=size, replace=False))]
    return rows


def refute_model(frame: pd.DataFrame, *, model_config: ModelConfig | None = None,
                 config: RefuteConfig | None = None, progress: Any = None,
                 actions: tuple[str, ...] | None = None) -> RefutationReport:
    """Run the gate on logged events, one contrast per action vs the baseline; never raises."""
    cfg = config or RefuteConfig()
    mcfg = model_config or ModelConfig()
    baseline = mcfg.baseline or LEGACY_DEFAULT_ACTION
    present = set(frame[TREATMENT])
    candidates = cfg.contrasts or tuple(a for a in (actions or ACTIONS) if a != baseline)
    contrasts = tuple(a for a in candidates if a in present)
    rng = np.random.default_rng(cfg.random_state)
    report = RefutationReport(config=cfg.to_dict())
    with threadpool_limits(limits=mcfg.omp_threads):
        for i, action in enumerate(contrasts):
            rows = _contrast_arrays(frame, action, baseline, cfg.sample_size, rng)
            t = (rows[TREATMENT].to_numpy() == action).astype(int)
            controls = {c: rows[c].to_numpy(float) for c in cfg.negative_controls if c in rows}
            try:
                sub = refute_binary(featurize(rows), t, rows[OUTCOME].to_numpy(float), config=cfg,
                                    contrast=f"{action} vs {baseline}", negative_controls=controls,
                                    omp_threads=mcfg.omp_threads)
            except Exception as exc:  # a crashed check must fail the gate, not the training run
                report.errors.append(f"{action}: {type(exc).__name__}: {exc}")
                continue
            report.checks += sub.checks
            report.errors += sub.errors
            if progress is not None:
                progress((i + 1) / len(contrasts))
    if not contrasts:
        report.errors.append("no contrast with logged rows for both sides")
    return report
