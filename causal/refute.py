"""Refutation tests run with dowhy as the gate before a model version is promoted.

For each contrast "action vs baseline" (binary treatment on the rows that got one of the two),
dowhy identifies the effect on the declared graph, estimates it with the same estimator family
(econml CausalForestDML, smaller so the gate stays affordable), and runs three refuters:

* placebo treatment (permuted): the effect of a random treatment must vanish;
* random common cause: adding an independent confounder must not move the estimate;
* data subset: re-estimating on a random 80% must give about the same estimate.

The pass rules are explicit tolerances (below), not p-values, because with the few simulations
affordable on a small machine dowhy's p-values are too coarse to gate on.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from causal.data import ACTIONS, FEATURE_NAMES, LEGACY_DEFAULT_ACTION, OUTCOME, TREATMENT, featurize
from causal.graph import TREATMENT_NODE, build_causal_model, identify
from causal.model import ModelConfig, nuisance_models


@dataclass
class RefuteConfig:
    """Size of the gate and its tolerances (relative to |estimate| plus an absolute floor)."""

    contrasts: tuple[str, ...] | None = None   # actions to test vs baseline; None = all
    sample_size: int = 4000                    # rows per contrast (subsampled)
    num_simulations: int = 3
    n_estimators: int = 40
    placebo_rel_tol: float = 0.25              # |placebo effect| <= tol*|est| + abs floor
    rcc_rel_tol: float = 0.15                  # |new - est| for random common cause
    subset_rel_tol: float = 0.30               # |new - est| for data subset
    abs_tol_std: float = 0.10                  # absolute floor = this * std(outcome)
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


@dataclass
class RefutationReport:
    checks: list[RefutationCheck] = field(default_factory=list)
    estimand: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.errors and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        failed = [f"{c.contrast}:{c.refuter}" for c in self.checks if not c.passed]
        summary = "all refutations passed" if self.passed else (
            f"failed: {failed}" if failed else f"errors: {self.errors}")
        return {"passed": self.passed, "summary": summary, "estimand": self.estimand,
                "errors": self.errors, "checks": [asdict(c) for c in self.checks]}


def _contrast_data(frame: pd.DataFrame, action: str, baseline: str, size: int,
                   rng: np.random.Generator) -> pd.DataFrame:
    rows = frame[frame[TREATMENT].isin([action, baseline])]
    if len(rows) > size:
        rows = rows.iloc[np.sort(rng.choice(len(rows), size=size, replace=False))]
    data = pd.DataFrame(featurize(rows), columns=list(FEATURE_NAMES))
    data[TREATMENT_NODE] = (rows[TREATMENT].to_numpy() == action).astype(int)
    data[OUTCOME] = rows[OUTCOME].to_numpy(float)
    return data


def refute_model(frame: pd.DataFrame, *, model_config: ModelConfig | None = None,
                 config: RefuteConfig | None = None, progress: Any = None) -> RefutationReport:
    """Run the dowhy refutation gate on logged events; never raises for a failed estimate."""
    cfg = config or RefuteConfig()
    mcfg = model_config or ModelConfig()
    baseline = mcfg.baseline or LEGACY_DEFAULT_ACTION
    contrasts = cfg.contrasts or tuple(a for a in ACTIONS if a != baseline)
    rng = np.random.default_rng(cfg.random_state)
    report = RefutationReport()
    logging.getLogger("dowhy").setLevel(logging.WARNING)
    small = ModelConfig(**{**mcfg.__dict__, "nuisance_max_iter": min(mcfg.nuisance_max_iter, 50)})
    with threadpool_limits(limits=mcfg.omp_threads):
        for i, action in enumerate(contrasts):
            _refute_contrast(frame, action, baseline, cfg, mcfg, small, rng, report)
            if progress is not None:
                progress((i + 1) / len(contrasts))
    return report


def _refute_contrast(frame: pd.DataFrame, action: str, baseline: str, cfg: RefuteConfig,
                     mcfg: ModelConfig, small: ModelConfig, rng: np.random.Generator,
                     report: RefutationReport) -> None:
    """Identify, estimate and refute one binary contrast; append checks or an error to `report`."""
    data = _contrast_data(frame, action, baseline, cfg.sample_size, rng)
    if data[TREATMENT_NODE].nunique() < 2:
        report.errors.append(f"{action}: no rows for one side of the contrast")
        return
    abs_tol = cfg.abs_tol_std * float(data[OUTCOME].std())
    model_y, model_t = nuisance_models(small)
    try:
        model = build_causal_model(data)
        estimand = identify(model)
        report.estimand = str(estimand.estimands.get("backdoor", {}) and "backdoor")
        estimate = model.estimate_effect(
            estimand, method_name="backdoor.econml.dml.CausalForestDML",
            control_value=0, treatment_value=1, effect_modifiers=list(FEATURE_NAMES),
            method_params={"init_params": {
                "model_y": model_y, "model_t": model_t, "discrete_treatment": True,
                "n_estimators": cfg.n_estimators, "min_samples_leaf": mcfg.min_samples_leaf,
                "max_samples": 0.45, "cv": 2, "random_state": cfg.random_state, "n_jobs": 1},
                "fit_params": {}})
        est = float(np.asarray(estimate.value).reshape(-1)[0])
        runs = [
            ("placebo_treatment", "placebo_treatment_refuter",
             {"placebo_type": "permute"}, cfg.placebo_rel_tol, True),
            ("random_common_cause", "random_common_cause", {}, cfg.rcc_rel_tol, False),
            ("data_subset", "data_subset_refuter", {"subset_fraction": 0.8}, cfg.subset_rel_tol,
             False),
        ]
        for name, method, kwargs, rel_tol, vs_zero in runs:
            result = model.refute_estimate(
                estimand, estimate, method_name=method, num_simulations=cfg.num_simulations,
                random_state=cfg.random_state, **kwargs)
            new = float(np.asarray(result.new_effect).reshape(-1)[0])
            tol = rel_tol * abs(est) + abs_tol
            deviation = abs(new) if vs_zero else abs(new - est)
            p_value = (result.refutation_result or {}).get("p_value") \
                if isinstance(result.refutation_result, dict) else None
            report.checks.append(RefutationCheck(
                contrast=f"{action} vs {baseline}", refuter=name, estimate=est,
                new_effect=new, tolerance=tol, passed=bool(deviation <= tol),
                p_value=None if p_value is None else float(p_value)))
    except Exception as exc:  # a refuter crash must fail the gate, not the training run
        report.errors.append(f"{action}: {type(exc).__name__}: {exc}")
