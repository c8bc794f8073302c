"""The served effect estimator: model selection picks it, a twin calibrates its intervals.

One step shared by every model that serves recommendations (`MitigationEffectModel` on the
built-in features, `SchemaEffectModel` on a declared schema): both hand it (Y, treatment codes,
X) and get back one fitted `ServedEstimator`.

WHY selection here and not only in a card: issue 12 measured that no single CATE family wins on
every data set, so whatever `causal.selection.EstimatorSelector` picks (econml RScorer, mean over
cross-fitted folds of a subsample: `ModelConfig.selection_folds`) is refit on all rows and is what
the policy serves. With `estimator="stack"` it serves the convex mix of up to three candidates
whose weights maximise the same mean score instead (meant against selection noise; measured worse
on the simulator's covariates, so not the default: bench/results/causal.md). On more rows than the
selection subsample, the three slowest families are left out of the race
(`ModelConfig.large_data_skip`), the race runs on fewer folds (`selection_folds_large`), the
served forest's trees draw at most `max_rows_per_tree` rows (`RowCappedCausalForestDML`), and a
stack is one family only (every member would be refit on all rows): the 100k-event training
budget. `fit_timings` on the card gives the seconds of each stage.

WHY a twin for the intervals: the forest's intervals covered 38-41% of true effects on public
semi-synthetic data, and the T/X/DR learners have none. Coverage can only be measured where the
truth is known, so the estimator builds a semi-synthetic twin of the operator's own data: same
covariates and the same logged (confounded) actions, baseline outcome mu0(x) from a boosted
regression, a planted effect, and the real residuals permuted within each action as noise. The
chosen family is refit on the twin, and the factor c that makes c * (its own standard error) cover
the planted effects at the calibration level is kept per action (families without standard errors
get a constant standard error of 1, so c is a half-width). What is planted is
`ModelConfig.calibration_plant` (causal.calibration): by default a twicing effect, 2 * estimate -
the family's refit of the estimate, because the estimate itself is smoother than the truth and
planting it under-stated the error (65-86% coverage of 90% intervals on the simulator's
semi-synthetic settings). A family with its own standard errors keeps at least them (c >= 1): a
factor < 1 is the twin rewarding an over-smooth fit. Served standard errors are c * raw standard
error; every interval and the policy's one-sided test derive from them. The bench measures the
coverage on held-out data with known effects that the twin never saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from econml.dml import CausalForestDML, LinearDML
from econml.dr import DRLearner
from econml.metalearners import TLearner, XLearner
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from causal.calibration import PLANTS, dr_residual_plant, effects, twicing_plant, twin_outcome
from causal.model_config import ModelConfig, nuisance_models
from causal.selection import EstimatorSelector


class RowCappedCausalForestDML(CausalForestDML):
    """CausalForestDML whose final forest gives each tree at most `max_rows_per_tree` rows.

    econml's `max_samples` is a share of the rows (float, <= 0.5 with inference: each subforest
    draws a half-sample, then each tree `floor(share * n)` rows of it) or a count (int, <= n // 2).
    On large data the share becomes the count `max_rows_per_tree` whenever the share is more rows
    (with the Deoxys share 0.3 and 25,000: from 83,337 rows); below, the share is used unchanged.
    The cap is applied at fit time only: `max_samples` keeps the configured share.

    WHY 25,000: the smallest cap tried that kept 90% coverage of the true effects >= 0.95 on every
    contrast of the simulator (seed 0, 100,000 events, 10,000 held-out nodes, the served forest
    fixed; the selection picks it there): rows per tree 15,000 / 20,000 / 25,000 / 30,000 (no cap)
    gave minimum coverage 0.930 / 0.947 / 0.951 / 0.957 and whole-fit CPU 26 / 36 / 41 / 43 s
    (load 3-8, so the CPU figures are noisy). The saving is small; the cap mainly bounds the forest's
    cost as the log grows past 100k events.
    """

    def __init__(self, *, max_rows_per_tree: int | None = None, **kwargs: Any) -> None:
        self.max_rows_per_tree = max_rows_per_tree
        super().__init__(**kwargs)

    def fit(self, Y: Any, T: Any, *, X: Any = None, W: Any = None, **kwargs: Any) -> RowCappedCausalForestDML:
        share: float | int = getattr(self, "max_samples")  # noqa: B009 (econml's attribute is untyped)
        self.rows_per_tree_ = capped_max_samples(len(Y), share, self.max_rows_per_tree)
        self.max_samples = self.rows_per_tree_
        try:
            super().fit(Y, T, X=X, W=W, **kwargs)
        finally:
            self.max_samples = share
        return self


def capped_max_samples(n_rows: int, share: float | int, cap: int | None) -> float | int:
    """econml `max_samples` for `n_rows`: the share, or the count `cap` when the share is more rows."""
    if cap is None or isinstance(share, int | np.integer):
        return share
    return int(cap) if int(np.floor(float(share) * n_rows)) > cap else share  # econml: floor(share * n)


FORCED_CHOICES = ("causal_forest_dml", "causal_forest_dml_econml_defaults", "linear_dml", "dr_learner",
                  "t_learner_gb", "x_learner_gb")


def served_candidates(config: ModelConfig, *, seed: int | None = None) -> dict[str, Callable[[], Any]]:
    """Multi-action candidate estimators (treatment codes 0..K-1, 0 = baseline).

    `causal_forest_dml` is the tuned Deoxys forest of `config`; the others are the families of
    `causal.selection.default_candidates` with boosted nuisances of `config.nuisance_max_iter` rounds.
    The opt-in families of `EXTRA_CANDIDATES` are included only when `config` names them
    (`extra_candidates`, `candidates` or `estimator`).
    """
    seed = config.random_state if seed is None else seed
    rounds = config.nuisance_max_iter

    def reg() -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(max_iter=rounds, min_samples_leaf=20, random_state=seed)

    def clf() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(max_iter=rounds, min_samples_leaf=20, random_state=seed)

    def forest() -> CausalForestDML:
        # drate=False: econml's fit-time doubly robust ATE/ATT (an out-of-bag prediction over every
        # training row) is never read; the model's ATE is the mean of the served effects
        model_y, model_t = nuisance_models(config)
        return RowCappedCausalForestDML(
            model_y=model_y, model_t=model_t, discrete_treatment=True, cv=config.cv, drate=False,
            n_estimators=max(4, int(config.n_estimators) // 4 * 4), min_samples_leaf=config.min_samples_leaf,
            max_depth=config.max_depth, max_samples=config.max_samples, max_features=config.max_features,
            inference=True, n_jobs=config.n_jobs, random_state=seed, max_rows_per_tree=config.max_rows_per_tree)

    return {
        "causal_forest_dml": forest,
        "causal_forest_dml_econml_defaults": lambda: CausalForestDML(discrete_treatment=True, random_state=seed,
                                                                     n_jobs=config.n_jobs),
        "linear_dml": lambda: LinearDML(model_y=reg(), model_t=clf(), discrete_treatment=True, cv=2,
                                        random_state=seed),
        "dr_learner": lambda: DRLearner(model_propensity=clf(), model_regression=reg(), model_final=reg(),
                                        cv=2, random_state=seed),
        "t_learner_gb": lambda: TLearner(models=reg()),
        "x_learner_gb": lambda: XLearner(models=reg(), propensity_model=clf()),
        **{n: f for n, f in extra_candidates(config, seed=seed).items()
           if n in config.extra_candidates or n in config.candidates or n == config.estimator},
    }


# opt-in families (`ModelConfig.extra_candidates`): measured by `python -m bench causal --only candidates`
EXTRA_CANDIDATES = ("linear_dml_auto", "linear_dml_poly2", "causal_forest_dml_auto")


def extra_candidates(config: ModelConfig, *, seed: int) -> dict[str, Callable[[], Any]]:
    """Standard econml families that race only when `config.extra_candidates` names them.

    `linear_dml_auto` / `causal_forest_dml_auto`: LinearDML / the Deoxys forest with econml's own
    nuisances (`'auto'`: the better of a cross-validated linear model and a random forest, as in
    econml's defaults). `linear_dml_poly2`: LinearDML on degree-2 polynomial features of x (boosted
    nuisances), a standard econml option for smooth heterogeneity.
    """
    from sklearn.preprocessing import PolynomialFeatures

    rounds = config.nuisance_max_iter

    def reg() -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(max_iter=rounds, min_samples_leaf=20, random_state=seed)

    def clf() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(max_iter=rounds, min_samples_leaf=20, random_state=seed)

    return {
        "linear_dml_auto": lambda: LinearDML(discrete_treatment=True, cv=2, random_state=seed),
        "linear_dml_poly2": lambda: LinearDML(model_y=reg(), model_t=clf(), discrete_treatment=True, cv=2,
                                              featurizer=PolynomialFeatures(2, include_bias=False),
                                              random_state=seed),
        "causal_forest_dml_auto": lambda: RowCappedCausalForestDML(
            discrete_treatment=True, cv=config.cv, drate=False, n_estimators=max(4, int(config.n_estimators) // 4 * 4),
            min_samples_leaf=config.min_samples_leaf, max_depth=config.max_depth, max_samples=config.max_samples,
            max_features=config.max_features, inference=True, n_jobs=config.n_jobs, random_state=seed,
            max_rows_per_tree=config.max_rows_per_tree),
    }


def racing_candidates(config: ModelConfig, candidates: dict[str, Any], n_rows: int) -> list[str]:
    """The families of `candidates` that race for `n_rows` training rows.

    `config.candidates` if given; else every family but the opt-in ones (`EXTRA_CANDIDATES`) not
    named in `config.extra_candidates`. On more rows than `selection_rows`, the slow families of
    `large_data_skip` are left out (they would be refit on every row).
    """
    if config.candidates:
        names = [n for n in candidates if n in config.candidates]
    else:
        names = [n for n in candidates if n not in EXTRA_CANDIDATES or n in config.extra_candidates]
    if n_rows > config.selection_rows:
        names = [n for n in names if n not in config.large_data_skip]
    return names


class StackedCate:
    """The convex mix sum_k w_k tau_k of a few candidate families, each fit on the same rows.

    Standard error: sum_k w_k se_k when every member has one (the bound for perfectly correlated
    member errors, so never narrower than the truth of the mix's own sampling noise); otherwise
    none, and the twin calibrates a constant half-width like for any family without intervals.
    """

    def __init__(self, makers: dict[str, Callable[[], Any]], weights: dict[str, float]) -> None:
        self.makers, self.weights = makers, weights
        self.members: dict[str, Any] = {}

    def fit(self, Y: np.ndarray, T: np.ndarray, *, X: np.ndarray) -> StackedCate:
        self.members = {name: self.makers[name]().fit(Y, T, X=X) for name in self.weights}
        self.makers = {}  # factories are closures: the fitted mix must stay picklable for the registry
        return self

    @property
    def models_t(self) -> Any:
        for member in self.members.values():
            if getattr(member, "models_t", None):
                return member.models_t
        return None

    def const_marginal_effect(self, X: np.ndarray) -> np.ndarray:
        return np.sum([w * np.asarray(self.members[n].const_marginal_effect(X), float).reshape(len(X), -1)
                       for n, w in self.weights.items()], axis=0)

    def const_marginal_effect_inference(self, X: np.ndarray) -> Any:
        from types import SimpleNamespace

        stderr = sum(w * np.asarray(self.members[n].const_marginal_effect_inference(X).stderr, float
                                    ).reshape(len(X), -1) for n, w in self.weights.items())
        return SimpleNamespace(stderr=stderr)


def stack_members(weights: dict[str, float], *, min_weight: float, max_members: int) -> dict[str, float]:
    """The heaviest members (weight >= min_weight, at most max_members), weights renormalised to 1."""
    kept = sorted(((w, n) for n, w in weights.items() if w >= min_weight), reverse=True)[:max_members]
    if not kept:
        kept = [max((w, n) for n, w in weights.items())]
    total = sum(w for w, _ in kept)
    return {n: w / total for w, n in kept}


@dataclass
class IntervalCalibration:
    """Per action (vs the baseline): the factor on the raw standard error, and the twin's coverage."""

    level: float
    rows: int
    raw_stderr: bool                       # the family has its own standard errors
    factor: list[float] = field(default_factory=list)
    factor_twin: list[float] = field(default_factory=list)     # before the floor at the family's own width
    coverage_raw: list[float | None] = field(default_factory=list)
    coverage_calibrated: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # what the twin planted (causal.calibration); the defaults describe calibrations pickled before
    plant: str = "estimate"
    reference: str | None = None        # whose estimate the plant starts from
    plant_roughness: list[float] = field(default_factory=list)   # RMS of planted - reference
    residual_share: list[float] = field(default_factory=list)  # dr_residual: signal share of the fit

    def to_dict(self) -> dict[str, Any]:
        if not hasattr(self, "factor_twin"):  # pickled before the floor existed: its factor was the twin's
            self.factor_twin = list(self.factor)
        for name in ("plant_roughness", "residual_share"):  # pickled before the plant options
            if name not in self.__dict__:
                setattr(self, name, [])
        return asdict(self)


def _stratified_subset(T: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(T) <= size:
        return np.arange(len(T))
    counts = np.bincount(T)
    stratify = T if counts[counts > 0].min() >= 2 else None
    keep, _ = train_test_split(np.arange(len(T)), train_size=size, stratify=stratify, random_state=seed)
    return np.sort(keep)


class ServedEstimator:
    """Select (or take the configured) family, fit it on all rows, calibrate its intervals."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.name: str | None = None
        self.estimator: Any = None
        self.selection: dict[str, Any] | None = None
        self.calibration: IntervalCalibration | None = None
        self.propensity_models: list[Any] = []
        self.weights: dict[str, float] = {}
        self.n_effects = 0
        self.fit_timings: dict[str, float] = {}   # wall seconds per stage of the last fit

    # --- fit ---------------------------------------------------------------------------------
    def fit(self, Y: np.ndarray, T: np.ndarray, *, X: np.ndarray) -> ServedEstimator:
        """Y outcome, T integer codes 0..K-1 (0 = baseline, every code present), X features."""
        cfg = self.config
        Y, T, X = np.asarray(Y, float), np.asarray(T, dtype=np.int64), np.asarray(X, float)
        self.n_effects = int(T.max())
        candidates = served_candidates(cfg)
        if cfg.estimator not in ("select", "stack") and cfg.estimator not in candidates:
            raise ValueError(f"unknown estimator {cfg.estimator!r}: 'select', 'stack' or one of {sorted(candidates)}")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        with threadpool_limits(limits=cfg.omp_threads):
            make: Callable[[], Any]
            if cfg.estimator in ("select", "stack"):
                rows = _stratified_subset(T, cfg.selection_rows, cfg.random_state)
                candidates = {n: candidates[n] for n in racing_candidates(cfg, candidates, len(Y))}
                folds = cfg.selection_folds_large if len(Y) > cfg.selection_rows else cfg.selection_folds
                selector = EstimatorSelector(candidates=candidates, seed=cfg.random_state, refit_on_all=False,
                                             folds=folds, omp_threads=cfg.omp_threads)
                selector.fit(Y[rows], T[rows], X=X[rows])
                self.selection = selector.card.to_dict()
                self.selection["subsample_rows"] = len(rows)
                left_out = sorted(set(served_candidates(cfg)) - set(candidates) - set(EXTRA_CANDIDATES))
                self.selection["left_out"] = left_out
                scored = (f"{folds} cross-fitted folds: each family fit on {folds - 1} and scored by R-loss on "
                          "the other, score = mean over folds" if folds > 1 else
                          f"{len(rows) - selector.card.validation_rows:,} to fit, "
                          f"{selector.card.validation_rows:,} to score by R-loss")
                self.selection["how"] = (
                    f"candidates scored on a stratified {len(rows):,}-row subsample of {len(Y):,} rows "
                    f"({scored}); the served family or mix refit on all rows"
                    + (f"; left out of the race: {', '.join(left_out)}" if left_out else "")
                    + ("; one family only (every member would be refit on all rows)"
                       if len(Y) > cfg.selection_rows and cfg.estimator == "stack" else ""))
                if cfg.estimator == "stack":
                    large = len(Y) > cfg.selection_rows
                    max_members = cfg.stack_max_members_large if large else cfg.stack_max_members
                    if max_members <= 1:
                        self.weights = {str(selector.card.chosen): 1.0}
                    else:
                        self.weights = stack_members(selector.card.weights, min_weight=cfg.stack_min_weight,
                                                     max_members=max_members)
                    if len(self.weights) > 1:
                        self.name = "stack(" + ", ".join(f"{n} {w:.2f}" for n, w in self.weights.items()) + ")"
                        weights = self.weights
                        make = lambda: StackedCate(candidates, weights)  # noqa: E731
                    else:
                        self.name = next(iter(self.weights))
                        make = candidates[self.name]
                else:
                    self.name = selector.card.chosen
                    assert self.name is not None
                    make = candidates[self.name]
            else:
                self.name = cfg.estimator
                make = candidates[self.name]
            timings["selection"] = time.perf_counter() - started
            t0 = time.perf_counter()
            self.estimator = make().fit(Y, T, X=X)
            self.propensity_models = self._propensity(T, X)
            timings["refit"] = time.perf_counter() - t0
            if cfg.calibrate_intervals:
                t0 = time.perf_counter()
                self.calibration = self._calibrate(Y, T, X, make)
                timings["calibration"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started
        self.fit_timings = {k: round(v, 2) for k, v in timings.items()}
        return self

    def _propensity(self, T: np.ndarray, X: np.ndarray) -> list[Any]:
        """P(code | x): the DML family's cross-fitted treatment models, else one boosted classifier."""
        models_t = getattr(self.estimator, "models_t", None)
        if models_t:
            return [m for fold in models_t for m in fold]
        _, clf = nuisance_models(self.config)
        return [clf.fit(X, T)]

    def _raw_stderr(self, estimator: Any, X: np.ndarray) -> np.ndarray | None:
        try:
            inference = estimator.const_marginal_effect_inference(X)
        except Exception:  # the family has no inference (T/X learners, DR with a boosted final stage)
            return None
        return np.asarray(inference.stderr, float).reshape(len(X), -1)

    def _calibrate(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, make: Callable[[], Any]
                   ) -> IntervalCalibration:
        cfg = self.config
        if cfg.calibration_plant not in PLANTS:
            raise ValueError(f"unknown calibration_plant {cfg.calibration_plant!r}: one of {PLANTS}")
        t0 = time.perf_counter()
        rows = _stratified_subset(T, cfg.calibration_rows, cfg.random_state + 7)
        Xs, Ts, Ys = X[rows], T[rows], Y[rows]
        n = len(rows)
        subsampled = n < len(Y)
        mu0_model, _ = nuisance_models(self.config)
        reference_name = self.name
        make_reference = make
        if cfg.calibration_plant == "twicing" and self.name in cfg.calibration_rigid:
            reference_name = cfg.calibration_reference
            make_reference = served_candidates(cfg)[reference_name]
        if make_reference is make and (not subsampled or cfg.calibration_plant == "estimate"):
            reference = self.const_marginal_effect(Xs)
        else:  # a flexible reference for a rigid family, or same-size fits on a subsample of large data
            reference = effects(make_reference().fit(Ys, Ts, X=Xs), Xs)
        shares: list[float] = []
        if cfg.calibration_plant == "twicing" and make_reference is not make and cfg.calibration_rigid_plant == "reference":
            planted = reference
        elif cfg.calibration_plant == "twicing":
            planted = twicing_plant(reference, Xs, Ts, Ys, make_reference=make_reference, mu0_model=mu0_model,
                                    seed=cfg.random_state + 13)
        elif cfg.calibration_plant == "dr_residual":
            planted, shares = dr_residual_plant(reference, Xs, Ts, Ys, seed=cfg.random_state + 17,
                                                rounds=cfg.nuisance_max_iter)
        else:
            planted = reference
        twin = make().fit(twin_outcome(Xs, Ts, Ys, planted, mu0_model=mu0_model, seed=cfg.random_state + 11),
                          Ts, X=Xs)
        estimate = effects(twin, Xs)
        raw = self._raw_stderr(twin, Xs)
        scale = np.ones_like(estimate) if raw is None else np.maximum(raw, 1e-12)
        level = 1.0 - cfg.calibration_alpha
        z = NormalDist().inv_cdf(1.0 - cfg.calibration_alpha / 2.0)
        cal = IntervalCalibration(level=level, rows=n, raw_stderr=raw is not None, plant=cfg.calibration_plant,
                                  reference=str(reference_name), residual_share=shares)
        # never narrower than the family's own intervals: a factor < 1 is the twin rewarding an
        # over-smooth fit of a plant still smoother than the truth
        floor = 1.0 if raw is not None and cfg.calibration_floor_own else 1e-9
        for k in range(estimate.shape[1]):
            err = np.abs(estimate[:, k] - planted[:, k])
            c = float(np.quantile(err / scale[:, k], level)) / z
            cal.factor_twin.append(c)
            c = max(c, floor)
            cal.factor.append(c)
            cal.coverage_raw.append(None if raw is None else float(np.mean(err <= z * raw[:, k])))
            cal.coverage_calibrated.append(float(np.mean(err <= z * c * scale[:, k])))
            cal.plant_roughness.append(float(np.sqrt(np.mean((planted[:, k] - reference[:, k]) ** 2))))
        cal.seconds = round(time.perf_counter() - t0, 2)
        return cal

    # --- predict -----------------------------------------------------------------------------
    def const_marginal_effect(self, X: np.ndarray) -> np.ndarray:
        """(n, K-1): effect of each code 1..K-1 vs the baseline code 0."""
        with threadpool_limits(limits=self.config.omp_threads):
            return np.asarray(self.estimator.const_marginal_effect(np.asarray(X, float)), float).reshape(len(X), -1)

    def stderr(self, X: np.ndarray) -> np.ndarray:
        """(n, K-1) served standard errors: the calibration factor times the raw standard error."""
        X = np.asarray(X, float)
        with threadpool_limits(limits=self.config.omp_threads):
            raw = self._raw_stderr(self.estimator, X)
        base = np.ones((len(X), self.n_effects)) if raw is None else raw
        if self.calibration is None:
            if raw is None:
                return np.full_like(base, np.nan)   # no interval at all: never "sure"
            return base
        return base * np.asarray(self.calibration.factor)[None, :]

    def interval(self, X: np.ndarray, *, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(effect, lower, upper), each (n, K-1), at level 1 - alpha from the served standard errors."""
        point = self.const_marginal_effect(X)
        half = NormalDist().inv_cdf(1.0 - alpha / 2.0) * self.stderr(X)
        return point, point - half, point + half

    def contrast(self, X: np.ndarray, *, T0: np.ndarray, T1: np.ndarray, alpha: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Effect of code T1[i] vs T0[i] per row with its interval.

        The standard error of a difference of two effects combines both served standard errors as
        if independent; both share the baseline's rows, so their covariance is usually positive and
        this is conservative.
        """
        n = len(X)
        point = self.const_marginal_effect(X)
        se = self.stderr(X)
        full_p = np.column_stack([np.zeros(n), point])
        full_s = np.column_stack([np.zeros(n), se])
        idx = np.arange(n)
        T0, T1 = np.asarray(T0, np.int64), np.asarray(T1, np.int64)
        diff = full_p[idx, T1] - full_p[idx, T0]
        s = np.sqrt(full_s[idx, T1] ** 2 + full_s[idx, T0] ** 2)
        half = NormalDist().inv_cdf(1.0 - alpha / 2.0) * s
        return diff, diff - half, diff + half

    def propensity(self, X: np.ndarray) -> np.ndarray:
        """(n, K) P(code | x) averaged over the propensity models."""
        out = np.zeros((len(X), self.n_effects + 1))
        for model in self.propensity_models:
            with threadpool_limits(limits=self.config.omp_threads):
                proba = model.predict_proba(X)
            out[:, [int(c) for c in model.classes_]] += proba
        return out / max(1, len(self.propensity_models))

    def card(self) -> dict[str, Any]:
        """What the model card shows: candidates, scores, the choice, and the interval calibration."""
        return {"served": self.name, "mode": self.config.estimator, "selection": self.selection,
                "stack_weights": self.weights or None,
                # pickled before the timings existed: none
                "fit_timings": dict(getattr(self, "fit_timings", {})) or None,
                "rows_per_tree": getattr(self.estimator, "rows_per_tree_", None),
                "interval_calibration": None if self.calibration is None else self.calibration.to_dict()}
