"""The estimator's knobs, apart from the model so `causal.estimation` can use them without a cycle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LassoCV, LogisticRegressionCV

from causal.data import LEGACY_DEFAULT_ACTION


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
    # fit budget (wt-fit8): the 100k-event training goal (< 120 s wall on 2 cores; issue 12)
    # rows per tree of the served forest's final stage on large data: max_samples (a share) becomes
    # this count once the share is more rows (0.3 x 100,000 = 30,000 -> 25,000; the cap bites from
    # 83,337 rows: econml draws floor(share x rows)). None = no cap. How it was picked:
    # causal.estimation.RowCappedCausalForestDML.
    max_rows_per_tree: int | None = 25_000
    # cross-fitted selection (causal.selection.EstimatorSelector): folds on data within
    # `selection_rows`, and on the `selection_rows` subsample of larger data (fewer: each fold
    # refits every candidate, and the race is part of the training budget)
    selection_folds: int = 3
    selection_folds_large: int = 2
    # which estimator serves: "select" = the single best of causal.estimation.served_candidates by
    # out-of-sample R-loss on `selection_rows` rows (refit on all rows); "stack" = the convex mix
    # with the lowest R-loss (causal.selection.stack_weights; members with weight >= stack_min_weight,
    # at most stack_max_members, each refit on all rows); or one candidate's name. "select" is the
    # default: on the simulator's covariates (3 reps) the mix's sqrt(PEHE) was 35-50% worse than the
    # single pick's (its weights, fit on ~540 validation rows, gave the rough T-learner up to 0.4)
    estimator: str = "select"
    selection_rows: int = 4000
    candidates: tuple[str, ...] = ()     # the families that race (empty: every served candidate)
    stack_min_weight: float = 0.1
    stack_max_members: int = 3
    # on more rows than `selection_rows` every member is refit on all of them: one member only
    # (= "select") keeps 100k events within the 120 s training budget
    stack_max_members_large: int = 1
    # families left out of the race when there are more rows than `selection_rows`: the three slowest
    # to fit (on the 4,000-row subsample of 100k simulator events: econml's defaults 30 s with their
    # cross-validated linear nuisances, DR 11 s, the X-learner 6.5 s, the others 1-6 s), so
    # cross-fitted selection + refit on all rows + twin calibration stays within the 120 s training
    # budget (bench/results/causal.md, Scale). The X-learner scored last of the four that raced on
    # simulator seeds 0 and 1 (single-split RScorer 0.090 and 0.234).
    large_data_skip: tuple[str, ...] = ("causal_forest_dml_econml_defaults", "dr_learner", "x_learner_gb")
    # candidates (wt-pehe8)
    # opt-in families of causal.estimation.EXTRA_CANDIDATES that join the race (empty: none). Off by
    # default: in the race they moved the served sqrt(PEHE) / econml defaults' on the semi-synthetic
    # tuning seeds 50-52 from a mean of 1.03 to 0.995 over the 6 settings, per setting both ways, and
    # worsened it on the report seeds 0-2 (1.12 -> 1.20; bench/results/causal.md, Candidate
    # families; `python -m bench causal --only candidates` measures each family).
    extra_candidates: tuple[str, ...] = ()
    # intervals calibrated on a semi-synthetic twin of the training data (causal.estimation)
    calibrate_intervals: bool = True
    calibration_rows: int = 10000
    calibration_alpha: float = 0.1
    # a family with its own intervals is never calibrated below them (factor >= 1): the twin plants
    # the served estimate, smoother than the truth, and rewarded over-smooth fits with factors
    # 0.83-0.87 and 65-84% coverage of 90% intervals on the simulator's semi-synthetic settings
    # (issue 12; bench/results/causal.md, Semi-synthetic)
    calibration_floor_own: bool = True
    # calibration (wt-cal8): what the twin plants as the known effect (causal.calibration).
    # "twicing" = 2 * reference - refit(reference), as rough relative to the reference as the truth
    # is relative to the estimate; "dr_residual" = the estimate plus the signal share of a held-out
    # fit of its doubly robust residual; "estimate" = the served estimate itself (before issue 12's
    # rework: a smooth plant under-covered, 0.65-0.86 on the simulator's semi-synthetic settings)
    calibration_plant: str = "twicing"
    # families whose final stage is linear: a twin built from their own estimate cannot show their
    # misspecification, so their twicing reference is `calibration_reference` fit on the same rows
    calibration_rigid: tuple[str, ...] = ("linear_dml",)
    calibration_reference: str = "causal_forest_dml"
    # what a rigid family's twin plants: the flexible "reference" estimate itself, or its "twicing".
    # Chosen on rep seeds 50-52 with linear_dml forced in every rep (LaLonde smooth / heavy-tailed,
    # simulator smooth): held-out coverage 0.98/0.95/0.94 with "reference", 0.99/0.98/0.98 with
    # "twicing" (a twiced forest estimate on 1,800 rows is rougher than the truth), 0.82/0.78/0.86
    # with the linear family's own estimate as the reference
    calibration_rigid_plant: str = "reference"
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
