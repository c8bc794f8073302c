"""`python -m bench causal --only candidates`: the ceiling of estimator selection (issue 12).

On the semi-synthetic settings of `bench.causal.semisynthetic_section` (same covariates, effects,
rows, 90/10 split and rep seeds), every candidate family is fit once on the training part and
its sqrt(PEHE) measured on the held-out part, next to econml's CausalForestDML defaults (which is
also the candidate `causal_forest_dml_econml_defaults`, same seed), the per-rep oracle family
(the best of all families on the held-out truth: what a perfect selector could serve), and what
cross-fitted RScorer selection ('select') and the R-loss stack ('stack') serve from two pools:
the default race and the default race plus the opt-in families
(`causal.estimation.EXTRA_CANDIDATES`). Selection is exactly `ServedEstimator`'s: the same folds,
seed and scorer (`causal.selection.EstimatorSelector`), on all training rows (< selection_rows).
Interval calibration is not run: it does not change the point estimates.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.common import markdown_table
from causal.estimation import EXTRA_CANDIDATES, served_candidates, stack_members
from causal.model_config import ModelConfig
from causal.selection import EstimatorSelector, stack_weights

DEFAULTS = "causal_forest_dml_econml_defaults"


def _pool_choice(selector: EstimatorSelector, pool: list[str], cfg: ModelConfig) -> tuple[str, dict[str, float]]:
    """(the single pick, the stack's members and weights) when only `pool` races."""
    scores = {n: s for n, s in selector.card.scores.items() if n in pool}
    pick = max(scores, key=lambda n: scores[n])
    weights = stack_weights([(scorer, {n: m for n, m in fitted.items() if n in scores})
                             for _, scorer, fitted in selector.folds_])
    return pick, stack_members(weights, min_weight=cfg.stack_min_weight, max_members=cfg.stack_max_members)


def candidates_measure(root: Any, *, rows: int, reps: int, seed: int) -> list[dict[str, Any]]:
    """One record per (setting, rep): every family's held-out sqrt(PEHE) and what each pool serves."""
    from bench.causal import SEMI_SHAPES, SEMI_SOURCES, semi_rep

    records = []
    for source in SEMI_SOURCES:
        for shape in SEMI_SHAPES:
            for rep in range(reps):
                drawn = semi_rep(root, source, shape, rows=rows, seed=seed + rep)
                if drawn is None:
                    break
                X, t, y, tau, tr, te = drawn
                cfg = ModelConfig(random_state=seed + rep, n_estimators=100, nuisance_max_iter=100, n_jobs=1,
                                  calibrate_intervals=False, extra_candidates=EXTRA_CANDIDATES)
                families = served_candidates(cfg)
                default_pool = [n for n in families if n not in EXTRA_CANDIDATES]
                effects: dict[str, np.ndarray] = {}
                seconds: dict[str, float] = {}
                with threadpool_limits(limits=1):
                    for name, make in families.items():
                        t0 = time.perf_counter()
                        model = make().fit(y[tr], t[tr], X=X[tr])
                        effects[name] = np.asarray(model.const_marginal_effect(X[te]), float).reshape(-1)
                        seconds[name] = time.perf_counter() - t0
                    selector = EstimatorSelector(candidates=families, seed=cfg.random_state, refit_on_all=False,
                                                 folds=cfg.selection_folds, omp_threads=1).fit(y[tr], t[tr], X=X[tr])

                def pehe(e: np.ndarray, truth: np.ndarray = tau[te]) -> float:
                    return float(np.sqrt(np.mean((e - truth) ** 2)))
                record: dict[str, Any] = {
                    "source": source, "shape": shape, "rep": seed + rep,
                    "pehe": {n: pehe(e) for n, e in effects.items()},
                    "scores": dict(selector.card.scores), "seconds": seconds}
                for label, pool in (("default", default_pool), ("extended", list(families))):
                    pick, members = _pool_choice(selector, pool, cfg)
                    mix = sum(w * effects[n] for n, w in members.items())
                    record[f"select_{label}"] = (pick, record["pehe"][pick])
                    record[f"stack_{label}"] = (members, pehe(np.asarray(mix)))
                records.append(record)
    return records


def candidates_section(root: Any, *, rows: int, reps: int, seed: int, dump: Path | None = None) -> str:
    records = candidates_measure(root, rows=rows, reps=reps, seed=seed)
    if dump is not None:
        dump.write_text(json.dumps(records, indent=1, default=str))
    families = list(records[0]["pehe"]) if records else []
    out = []
    for source in ("lalonde", "simulator"):
        for shape in ("smooth", "step", "heavy_tailed"):
            recs = [r for r in records if r["source"] == source and r["shape"] == shape]
            if not recs:
                continue
            base = float(np.mean([r["pehe"][DEFAULTS] for r in recs]))

            def cell(values: list[float], base: float = base) -> str:
                return f"{np.mean(values):.3f} ({np.mean(values) / base:.2f})"
            row: dict[str, Any] = {"covariates": source, "effect shape": shape, "econml CF defaults": f"{base:.3f}"}
            for name in families:
                if name != DEFAULTS:
                    row[name] = cell([r["pehe"][name] for r in recs])
            row["oracle family per rep"] = cell([min(r["pehe"].values()) for r in recs])
            for label in ("default", "extended"):
                row[f"select ({label} pool)"] = cell([r[f"select_{label}"][1] for r in recs])
                row[f"stack ({label} pool)"] = cell([r[f"stack_{label}"][1] for r in recs])
            row["picked (extended pool, per rep)"] = "; ".join(r["select_extended"][0] for r in recs)
            out.append(row)
    return (f"## Candidate families, rep seeds {seed}-{seed + reps - 1} (semi-synthetic settings, {rows:,} rows, "
            f"90/10 split, {reps} reps)\n\n"
            "Held-out sqrt(PEHE), mean over reps, and in brackets its ratio to econml's CausalForestDML defaults "
            "(the issue's goal: <= 0.6). Each family is fit once on the training part (`causal.estimation."
            "served_candidates` with the semi-synthetic section's config; the opt-in families of "
            f"`EXTRA_CANDIDATES` = {', '.join(EXTRA_CANDIDATES)}). 'oracle family per rep': the best family on the "
            "held-out truth in each rep (no selector can do better by picking one family). 'select' / 'stack': "
            "what cross-fitted RScorer selection (3 folds, the served estimator's) picks from the default race "
            "or from the race plus the opt-in families. Same covariates, effects, splits and seeds as the "
            "Semi-synthetic section. `python -m bench causal --only candidates --semi-seed N`.\n\n"
            + markdown_table(out))
