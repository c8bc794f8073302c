"""Deoxys benchmark: learned mitigation policy vs the legacy rule vs the oracle.

1. Simulator (causal/synthetic.py): train on logged history, decide on held-out episodes, score
   every policy with the *true* potential outcomes (mean VM downtime, interruption rate).
   The simulator's true expected outcomes are functions of the observed features, so the oracle
   (argmin of the true E[downtime | features, action]) is what a perfect model could reach; the
   clairvoyant row (also knows the latent fault) is shown for scale only. The learned policy is
   reported with and without fallback, every fallback rule with its rate, its cost and how often
   legacy was truly no worse on the nodes it sent to legacy; and the 90% intervals of the effects
   are checked against the true effects (coverage).
2. Off-policy evaluation: doubly robust estimate of each policy from the held-out logs alone,
   next to the simulator's truth.
3. Real-data sanity: LaLonde NSW treated vs CPS controls (observational), effect of the job
   training on 1978 earnings vs the experimental benchmark of about $1,794.
4. Scale: wall time and peak memory of training and of batched recommendations.

5. The refutation gate's decision on four planted cases (clean, hidden confounder, zero effect,
   outcome leaked into the features).

Usage: python -m bench causal [--quick] [--data PATH] [--train N] [--nodes N] [--trees N] [--seed N]
       [--gate-seeds N] [--gate-rows N] [--only gate|semisynthetic|simulator|scale|candidates]
       python -m bench causal --only semisynthetic [--semi-reps N] [--semi-rows N] [--semi-seed N]
       [--covariates lalonde,simulator] [--shapes smooth,step,heavy_tailed]
With --covariates/--shapes filters the semi-synthetic rows replace those settings' rows and the others are kept.
The data path defaults to $AIOPS_DATA_DIR or ../shared/data beside the project.
`--only X` runs one part and replaces only its own sections of bench/results/causal.md (the others,
and the full run's command line, stay as they are; a note under the replaced heading says how it
was re-run). Without a previous file it writes that part alone.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bench.common import data_dir, markdown_table, table_after
from causal.data import ACTIONS, OUTCOME, TREATMENT, action_index
from causal.evaluation import dr_policy_value
from causal.legacy import legacy_rule
from causal.model import MitigationEffectModel, ModelConfig
from causal.policy import MitigationPolicy, PolicyConfig
from causal.refute import RefuteConfig, refute_model
from causal.synthetic import FAULTS, simulate_events

PAPER = {"downtime": -0.53, "interruption": -0.495}
TARGET = {"downtime": -0.55, "interruption": -0.50}


def results_path() -> Path:
    """Where the runner writes this benchmark's report (AIOPS_BENCH_RESULTS in tests)."""
    return Path(os.environ.get("AIOPS_BENCH_RESULTS", Path(__file__).resolve().parent / "results")) / "causal.md"


def _section_key(heading: str) -> str:
    """'## Served estimator: x (y)' -> 'Served estimator': a section keeps its key when its figures change."""
    return re.split(r"[:(]", heading[3:], maxsplit=1)[0].strip()


def _blocks(text: str) -> list[tuple[str, str]]:
    """(key, text) of every '## ' section in order; the text before the first one has key ''."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            out.append((_section_key(line), []))
        out[-1][1].append(line)
    return [(key, "".join(lines)) for key, lines in out if key or "".join(lines).strip()]


def replace_sections(document: str, new: str, *, note: str = "") -> str:
    """`document` with each '## ' section of `new` in place of the one of the same key (appended if new).

    Everything else of `document` (its header, the other sections) is kept byte for byte. `note`
    goes under the heading of the first replaced section (how and when it was re-run), a pointer to
    it under the others. `new`'s text before its first '## ' heading is dropped.
    """
    replacements = {key: text for key, text in _blocks(new) if key}
    if note:
        first = next(iter(replacements), "")
        for key, text in replacements.items():
            heading, _, body = text.partition("\n")
            said = note.strip() if key == first else f"_Re-run with the section '{first}' (its note says how)._"
            replacements[key] = f"{heading}\n\n{said}\n{body}"
    old = _blocks(document)
    kept = {key for key, _ in old}
    # every block ends in a blank line, so a section appended after the last one gets its own heading line
    out = [(replacements[key] if key in replacements else text).rstrip("\n") + "\n\n" for key, text in old]
    out += [text.rstrip("\n") + "\n\n" for key, text in replacements.items() if key not in kept]
    return "".join(out).rstrip("\n") + "\n"


def _rerun_report(new: str, argv: list[str], started: float, loads: list[float]) -> str:
    """The previous report with `new`'s sections swapped in (the runner writes it as is: '# bench:' first)."""
    path = results_path()
    if not path.exists():
        return new
    wall = time.perf_counter() - started
    note = (f"_Re-run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m bench causal {' '.join(argv)}` "
            f"(wall {wall:.1f} s; `uptime` load average (1 min) {min(loads):.1f}-{max(loads):.1f} during the "
            "run); the rest of this file is from the run named at the top unless its own note says otherwise._")
    return replace_sections(path.read_text(), new, note=note)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _nodes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[TREATMENT, OUTCOME, "vm_interrupted", "capacity_out_hours"])


def _recommend(policy: MitigationPolicy, nodes: pd.DataFrame, batch: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Actions, per-node fallback flags and wall time of recommending for `nodes` in batches."""
    actions, fallback = [], []
    started = time.perf_counter()
    for start in range(0, len(nodes), batch):
        result = policy.recommend_batch(nodes.iloc[start:start + batch])
        actions.extend(result.actions)
        fallback.extend(r.fallback for r in result.recommendations)
    elapsed = time.perf_counter() - started
    return np.array(actions, dtype=object), np.array(fallback, dtype=bool), elapsed


FALLBACK_VARIANTS: list[tuple[str, PolicyConfig]] = [
    ("default (one-sided 80% sure, width <= 180 min, P(action) >= 1%)", PolicyConfig()),
    ("previous default (two-sided 90% CI excludes 0, width <= 60, P >= 2%)",
     PolicyConfig(confidence=0.95, max_interval_width=60.0, min_propensity=0.02)),
    ("support + width only (no confidence test)", PolicyConfig(require_significant=False)),
    ("no fallback", PolicyConfig(fallback_enabled=False)),
]


def _coverage_rows(model: MitigationEffectModel, held, alpha: float) -> list[dict]:
    """Do the (1-alpha) intervals cover the simulator's true conditional effects?"""
    table = model.effects(held.frame, alpha=alpha)
    truth = held.true_effects(model.config.baseline)
    rows = []
    for k, action in enumerate(ACTIONS):
        if action == model.config.baseline:
            continue
        t, e = truth[:, k], table.effect[:, k]
        rows.append({"contrast": f"{action} vs {model.config.baseline}",
                     "coverage": float(((table.lower[:, k] <= t) & (t <= table.upper[:, k])).mean()),
                     "mean width (min)": float((table.upper[:, k] - table.lower[:, k]).mean()),
                     "mean true effect": float(t.mean()), "mean estimate": float(e.mean()),
                     "bias": float((e - t).mean()), "RMSE": float(np.sqrt(((e - t) ** 2).mean())),
                     "corr(estimate, truth)": float(np.corrcoef(e, t)[0, 1])})
    return rows


def simulator_section(args: argparse.Namespace) -> tuple[str, dict[str, float]]:
    history = simulate_events(args.train, seed=args.seed)
    held = simulate_events(args.nodes, seed=args.seed + 1)
    config = ModelConfig(n_estimators=args.trees, random_state=args.seed)
    model, fit = _timed_fit(args, config, history)
    nodes = _nodes(held.frame)
    legacy = legacy_rule(held.frame)
    runs = {}
    for name, cfg in FALLBACK_VARIANTS:
        runs[name] = _recommend(MitigationPolicy(model, config=cfg), nodes, args.batch)
    default_name, nofb_name = FALLBACK_VARIANTS[0][0], FALLBACK_VARIANTS[-1][0]
    learned, learned_fb, rec_s = runs[default_name]
    no_fallback = runs[nofb_name][0]
    rows, values = [], {}
    base = held.policy_outcomes(legacy)
    for name, acts, fb in [("legacy rule", legacy, 0.0),
                           ("learned (with fallback, default thresholds)", learned, learned_fb.mean()),
                           ("learned (no fallback)", no_fallback, 0.0),
                           ("oracle (argmin of true E[downtime | features])", held.oracle_actions(), 0.0),
                           ("clairvoyant (also knows the latent fault; not achievable)",
                            held.clairvoyant_actions(), 0.0),
                           ("logged (confounded logging policy)", held.frame[TREATMENT].to_numpy(), 0.0)]:
        out = held.policy_outcomes(acts)
        values[name] = out["downtime"]
        rows.append({
            "policy": name, "mean VM downtime (min)": out["downtime"],
            "interruption rate": out["interruption_rate"],
            "capacity out (node-h)": out["capacity_hours"],
            "downtime vs legacy": f"{out['downtime'] / base['downtime'] - 1:+.1%}",
            "interruptions vs legacy": f"{out['interruption_rate'] / base['interruption_rate'] - 1:+.1%}",
            "fallback rate": f"{fb:.1%}"})
    learned_out = held.policy_outcomes(learned)
    d_dt = learned_out["downtime"] / base["downtime"] - 1
    d_int = learned_out["interruption_rate"] / base["interruption_rate"] - 1
    nofb_out = held.policy_outcomes(no_fallback)
    n_dt = nofb_out["downtime"] / base["downtime"] - 1
    n_int = nofb_out["interruption_rate"] / base["interruption_rate"] - 1
    post = held.fault_posterior
    text = [f"## Simulator: {args.train:,} logged episodes for training, {args.nodes:,} held-out nodes\n",
            "True expected outcomes are functions of the observed features (exact Bayes mix over "
            f"the latent fault; the fault is identifiable from the features for "
            f"{(post.argmax(axis=1) == np.array([FAULTS.index(f) for f in held.fault])).mean():.1%} "
            f"of held-out nodes, mean max posterior {post.max(axis=1).mean():.3f}).\n",
            markdown_table(rows),
            f"\nLearned policy (default thresholds, with fallback): downtime {d_dt:+.1%}, "
            f"interruptions {d_int:+.1%} vs legacy; without fallback {n_dt:+.1%} / {n_int:+.1%} "
            f"(paper: {PAPER['downtime']:+.1%} / {PAPER['interruption']:+.1%}; issue target: "
            f"<= {TARGET['downtime']:+.0%} / <= {TARGET['interruption']:+.0%}). Target met with "
            f"fallback: downtime {'yes' if d_dt <= TARGET['downtime'] else 'NO'}, interruptions "
            f"{'yes' if d_int <= TARGET['interruption'] else 'NO'}; without fallback: downtime "
            f"{'yes' if n_dt <= TARGET['downtime'] else 'NO'}, interruptions "
            f"{'yes' if n_int <= TARGET['interruption'] else 'NO'}.  ",
            f"Cost of fallback: {learned_fb.mean():.1%} of nodes fall back to legacy, which changes "
            f"mean downtime from {nofb_out['downtime']:.2f} (no fallback) to "
            f"{learned_out['downtime']:.2f} min ({learned_out['downtime'] / nofb_out['downtime'] - 1:+.1%}).\n"]

    # fallback rules: how often, at what cost, and do they pick the nodes where the model is wrong?
    expected = held.expected_downtime
    idx = np.arange(len(legacy))
    legacy_col = action_index(legacy)
    model_col = action_index(no_fallback)
    legacy_better = expected[idx, legacy_col] <= expected[idx, model_col]
    differs = legacy_col != model_col
    fb_rows = []
    for name, _ in FALLBACK_VARIANTS:
        acts, flags, _ = runs[name]
        out = held.policy_outcomes(acts)
        fb_rows.append({
            "fallback rule": name, "fallback rate": f"{flags.mean():.1%}",
            "mean VM downtime (min)": out["downtime"],
            "cost vs no fallback": f"{out['downtime'] / nofb_out['downtime'] - 1:+.1%}",
            "downtime vs legacy": f"{out['downtime'] / base['downtime'] - 1:+.1%}",
            "interruptions vs legacy": f"{out['interruption_rate'] / base['interruption_rate'] - 1:+.1%}",
            "legacy truly no worse, among fallen-back nodes":
                f"{legacy_better[flags].mean():.1%}" if flags.any() else "-"})
    text += ["### Fallback rules (same model)\n", markdown_table(fb_rows),
             f"\nBase rate: among nodes where the model's choice differs from legacy "
             f"({differs.mean():.1%} of nodes), legacy is truly no worse for "
             f"{legacy_better[differs].mean():.1%}. A useful fallback rule concentrates on those.\n"]

    cov_rows = _coverage_rows(model, held, alpha=0.1)
    point, lo, hi = model.contrast_interval(held.frame.loc[differs], from_actions=legacy[differs],
                                            to_actions=no_fallback[differs], alpha=0.1)
    true_contrast = (expected[idx, model_col] - expected[idx, legacy_col])[differs]
    cov_rows.append({"contrast": "model choice vs legacy (nodes where they differ)",
                     "coverage": float(((lo <= true_contrast) & (true_contrast <= hi)).mean()),
                     "mean width (min)": float((hi - lo).mean()),
                     "mean true effect": float(true_contrast.mean()), "mean estimate": float(point.mean()),
                     "bias": float((point - true_contrast).mean()),
                     "RMSE": float(np.sqrt(((point - true_contrast) ** 2).mean())),
                     "corr(estimate, truth)": float(np.corrcoef(point, true_contrast)[0, 1])})
    text += ["### 90% interval coverage of the true conditional effects (held-out nodes)\n",
             markdown_table(cov_rows)]

    # off-policy evaluation from held-out logs only
    ope_rows = []
    for name, acts in [("legacy rule", legacy), ("learned (with fallback)", learned),
                       ("oracle", held.oracle_actions()),
                       ("learned (no fallback)", no_fallback)]:
        est = dr_policy_value(held.frame, acts, seed=args.seed)
        truth = held.policy_outcomes(acts)["downtime"]
        ope_rows.append({"policy": name, "true downtime": truth, "DR estimate": est.dr,
                         "DR 95% CI": f"[{est.dr - 1.96 * est.dr_se:.2f}, {est.dr + 1.96 * est.dr_se:.2f}]",
                         "IPS estimate": est.ips, "direct-method estimate": est.direct,
                         "DR error": f"{est.dr / truth - 1:+.1%}"})
    text += ["\n## Off-policy evaluation (doubly robust) from the held-out logs alone\n",
             markdown_table(ope_rows)]

    # refutation gate on the training history (the promotion gate of train())
    t0 = time.perf_counter()
    refute = refute_model(history.frame, model_config=config,
                          config=RefuteConfig(sample_size=args.refute_rows, num_simulations=1,
                                              n_estimators=40))
    refute_s = time.perf_counter() - t0
    ref_rows = [{"contrast": c.contrast, "refuter": c.refuter, "estimate": c.estimate,
                 "new effect / statistic": c.new_effect, "tolerance": c.tolerance,
                 "p-value": "-" if c.p_value is None else f"{c.p_value:.3g}", "passed": c.passed}
                for c in refute.checks]
    text += [f"\n## Refutation gate on the simulator history ({args.refute_rows:,} rows per contrast, "
             "1 simulation per refit check, 200 placebo permutations)\n",
             markdown_table(ref_rows), f"\nGate passed: {refute.passed}; errors: {refute.errors or 'none'}\n"]

    card = model.metadata()["estimator"]
    selection = card["selection"] or {}
    cal = card["interval_calibration"] or {}
    sel_rows = [{"candidate": c["name"], "RScorer score (mean over folds)": c["score"] if c["score"] is not None else "-",
                 "per fold": ", ".join(f"{v:.3f}" for v in c.get("fold_scores") or []) or "-",
                 "stack weight": (selection.get("stack_weights") or {}).get(c["name"], "-"),
                 "fit s": c["fit_seconds"], "error": c["error"] or "-",
                 "served": "yes" if c["name"] == card["served"] else ""} for c in selection.get("candidates", [])]
    cal_rows = [{"contrast": f"{a} vs {model.config.baseline}", "raw 90% coverage on the twin":
                 "n/a" if raw is None else f"{raw:.3f}", "factor on the standard error": f"{f:.3f}"}
                for a, raw, f in zip(model.categories[1:], cal.get("coverage_raw", []), cal.get("factor", []),
                                     strict=False)]
    text += [f"\n## Served estimator: {card['served']} (chosen by RScorer, mean over {selection.get('folds', 1)} "
             f"cross-fitted folds of a {selection.get('subsample_rows', 0):,}-row subsample, refit on all rows)\n",
             "Each family is fit on all folds but one and scored by an RScorer fit on the held-out fold; its score "
             "is the mean over folds (every subsample row scored once). More rows than the subsample: the best "
             "single family is served (every member of a mix would be refit on all rows) and "
             f"{', '.join(model.config.large_data_skip) or 'no family'} sit out the race "
             "(the slowest to fit; `ModelConfig.large_data_skip`). Stack weight = the convex mix with the "
             "best mean score over the folds (served only with estimator='stack' on smaller data sets). "
             f"The served forest's trees draw {card.get('rows_per_tree') or '-'} rows each "
             "(`ModelConfig.max_rows_per_tree` on large data; fit s = sum over folds).\n",
             markdown_table(sel_rows) if sel_rows else "_no selection (estimator fixed in the config)_\n",
             f"\nInterval calibration on a {cal.get('rows', 0):,}-row twin of the training history "
             "(causal.estimation); the coverage table above uses the calibrated intervals:\n",
             markdown_table(cal_rows)]
    scale = {**fit, "rec_s": rec_s, "refute_s": refute_s, "rec_peak": _peak_mb()}
    return "\n".join(text), scale


def _load(args: argparse.Namespace) -> None:
    """Record the 1-minute load average (`uptime`) at this point of the run."""
    args.loads = [*getattr(args, "loads", []), os.getloadavg()[0]]


def _timed_fit(args: argparse.Namespace, config: ModelConfig, history) -> tuple[MitigationEffectModel, dict]:
    """Fit the served model on the history: wall and CPU seconds, peak memory, the card's stages."""
    _load(args)
    t0, c0 = time.perf_counter(), time.process_time()
    model = MitigationEffectModel(config).fit(history.frame)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    _load(args)
    card = model.metadata()["estimator"]
    selection = card["selection"] or {}
    return model, {"fit_s": fit_s, "fit_cpu": fit_cpu, "fit_peak": _peak_mb(), "served": card["served"],
                   "selection_rows": selection.get("subsample_rows", 0), "folds": selection.get("folds", 0),
                   "families": len(selection.get("candidates", [])),
                   "calibration_rows": (card["interval_calibration"] or {}).get("rows", 0),
                   "timings": card.get("fit_timings") or {}, "rows_per_tree": card.get("rows_per_tree")}


def scale_measure(args: argparse.Namespace) -> dict:
    """The Scale section's figures alone: fit, the promotion gate, batched recommendations."""
    history = simulate_events(args.train, seed=args.seed)
    held = simulate_events(args.nodes, seed=args.seed + 1)
    config = ModelConfig(n_estimators=args.trees, random_state=args.seed)
    model, fit = _timed_fit(args, config, history)
    _, _, rec_s = _recommend(MitigationPolicy(model, config=FALLBACK_VARIANTS[0][1]), _nodes(held.frame), args.batch)
    t0 = time.perf_counter()
    refute_model(history.frame, model_config=config,
                 config=RefuteConfig(sample_size=args.refute_rows, num_simulations=1, n_estimators=40))
    refute_s = time.perf_counter() - t0
    _load(args)
    return {**fit, "rec_s": rec_s, "refute_s": refute_s, "rec_peak": _peak_mb()}


def scale_section(args: argparse.Namespace, scale: dict) -> str:
    ms_per_node = 1000.0 * scale["rec_s"] / args.nodes
    stages = scale["timings"]
    per_tree = scale["rows_per_tree"]
    rows: list[dict[str, object]] = [
        {"stage": f"fit the served estimator on {args.train:,} events (selection on "
                  f"{scale['selection_rows']:,} rows, {scale['served']} refit on all, twin calibration on "
                  f"{scale['calibration_rows']:,} rows)",
         "wall time (s)": scale["fit_s"], "CPU time (s)": scale["fit_cpu"], "target": "< 120 s",
         "met": "yes" if scale["fit_s"] < 120 else "NO", "peak RSS (MB)": scale["fit_peak"]},
        {"stage": f"- of which selection ({scale['families']} families x {scale['folds']} cross-fitted folds)",
         "wall time (s)": stages.get("selection", "-"), "CPU time (s)": "-", "target": "-", "met": "-",
         "peak RSS (MB)": "-"},
        {"stage": f"- of which refit on all rows ({scale['served']}"
                  + (f"; {per_tree:,} rows per tree" if isinstance(per_tree, int) else "") + ")",
         "wall time (s)": stages.get("refit", "-"), "CPU time (s)": "-", "target": "-", "met": "-",
         "peak RSS (MB)": "-"},
        {"stage": "- of which twin calibration", "wall time (s)": stages.get("calibration", "-"),
         "CPU time (s)": "-", "target": "-", "met": "-", "peak RSS (MB)": "-"},
        {"stage": "refutation gate (4 contrasts x 7 checks)", "wall time (s)": scale["refute_s"],
         "CPU time (s)": "-", "target": "-", "met": "-", "peak RSS (MB)": scale["rec_peak"]},
        {"stage": f"recommend {args.nodes:,} nodes in batches of {args.batch}",
         "wall time (s)": scale["rec_s"], "CPU time (s)": "-", "target": "< 20 ms/node",
         "met": f"{'yes' if ms_per_node < 20 else 'NO'} ({ms_per_node:.2f} ms/node)",
         "peak RSS (MB)": scale["rec_peak"]},
    ]
    loads = getattr(args, "loads", [])
    return ("## Scale (2-core machine shared with other jobs; peak RSS is the whole process)\n\n"
            + (f"`uptime` load average (1 min) {loads[0]:.1f} at the start of the fit, {loads[1]:.1f} at its end. "
               if len(loads) >= 2 else "")
            + "CPU time = the process's user + system seconds over all its threads (the forest grows "
              "trees on 2 threads, the boosted nuisances use 1); the fit does no I/O, so with no other jobs "
              "its wall time would be at most about its CPU time. Stages from the model card's `fit_timings`.\n\n"
            + markdown_table(rows))


def simulator_gate_section(args: argparse.Namespace) -> str:
    """The gate on the simulator history alone (as train() runs it), without the policy tables."""
    history = simulate_events(args.train or 100_000, seed=args.seed)
    refute = refute_model(history.frame, model_config=ModelConfig(random_state=args.seed),
                          config=RefuteConfig(sample_size=args.refute_rows or 3000, num_simulations=1,
                                              n_estimators=40))
    rows = [{"contrast": c.contrast, "refuter": c.refuter, "estimate": c.estimate,
             "new effect / statistic": c.new_effect, "tolerance": c.tolerance,
             "p-value": "-" if c.p_value is None else f"{c.p_value:.3g}", "passed": c.passed}
            for c in refute.checks]
    return (f"## Refutation gate on the simulator history ({args.refute_rows or 3000:,} rows per contrast, "
            "1 simulation per refit check, 200 placebo permutations)\n\n" + markdown_table(rows)
            + f"\nGate passed: {refute.passed}; errors: {refute.errors or 'none'}\n")


def gate_section(seeds: int, rows: int) -> str:
    """The gate's decision on the four planted cases (known right answer), over several seeds."""
    from causal.refute import refute_binary
    from causal.synthetic import GATE_CASES, planted_gate_case

    out = []
    for name, expected in GATE_CASES.items():
        right, failed_checks, estimates = 0, [], []
        for seed in range(seeds):
            case = planted_gate_case(name, n=rows, seed=seed)
            report = refute_binary(case.X, case.t, case.y, contrast=name,
                                   config=RefuteConfig(random_state=seed, num_simulations=2),
                                   negative_controls={"prev_downtime": case.negative_control})
            right += report.passed == expected
            failed_checks += [c.refuter for c in report.checks if not c.passed]
            estimates.append(report.checks[0].estimate if report.checks else float("nan"))
        counts = pd.Series(failed_checks, dtype=object).value_counts().to_dict()
        out.append({"case": name, "expected": "pass" if expected else "refuse",
                    "true effect": 0.0 if name == "zero_effect" else 4.0,
                    "mean estimate": float(np.mean(estimates)),
                    f"right (of {seeds} seeds)": right,
                    "checks that refused (count)": ", ".join(f"{k} ({v})" for k, v in counts.items()) or "-"})
    total = sum(r[f"right (of {seeds} seeds)"] for r in out)
    return (f"## Refutation gate on four planted cases ({rows:,} rows each, {seeds} seeds)\n\n"
            "Cases from `causal.synthetic.planted_gate_case`; thresholds are `RefuteConfig` defaults "
            "(alpha 0.01, subsets/random cause within z(alpha)=2.58 SE, E-value >= 1.2, leak R^2 >= 0.98 or one "
            "feature |Spearman| >= 0.97), set before these cases were run and not tuned on them "
            "except the E-value bound's level (see report).\n\n"
            + markdown_table(out) + f"\nGate right on {total} of {4 * seeds} case runs.\n")


def _covariates(root, name: str, rows: int, seed: int) -> np.ndarray | None:
    """Real covariates for semi-synthetic data: LaLonde (NSW treated + CPS) or the simulator's."""
    rng = np.random.default_rng(seed)
    if name == "lalonde":
        folder = root / "causal" / "jobs_lalonde_causaldata"
        if not (folder / "cps_mixtape.csv").exists():
            return None
        frame = pd.concat([pd.read_csv(folder / "nsw_mixtape.csv"), pd.read_csv(folder / "cps_mixtape.csv")])
        X = frame[["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]].to_numpy(float)
        X[:, 6:] = np.log1p(X[:, 6:])
    else:
        from causal.data import featurize

        X = featurize(simulate_events(rows, seed=seed).frame)
    X = X[rng.choice(len(X), size=min(rows, len(X)), replace=False)]
    return X


def _semi_synthetic(X: np.ndarray, shape: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, y, true CATE) on real covariates: confounded assignment, known effect of a given shape."""
    rng = np.random.default_rng(seed)
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    w = rng.normal(size=Z.shape[1]) / np.sqrt(Z.shape[1])
    a, b = rng.choice(Z.shape[1], size=2, replace=False)
    propensity = 1 / (1 + np.exp(-np.clip(Z @ w, -3, 3)))
    t = (rng.random(len(Z)) < propensity).astype(int)
    if shape == "smooth":
        tau = 1.0 + Z[:, a] + 0.5 * Z[:, b] ** 2
    elif shape == "step":
        tau = 2.0 * (Z[:, a] > 0) - 1.0 * (Z[:, b] > 0.5)
    else:  # heavy-tailed: a few units with very large effects
        tau = np.exp(np.clip(1.2 * Z[:, a], -5, 5)) - 1.0
    mu = Z @ rng.normal(size=Z.shape[1]) + np.sin(Z[:, b])
    y = mu + tau * t + rng.normal(size=len(Z))
    return t, y, tau


SEMI_HEADING = "## Semi-synthetic CATE on real covariates"
SEMI_SOURCES = ("lalonde", "simulator")
SEMI_SHAPES = ("smooth", "step", "heavy_tailed")


def semi_rep(root, source: str, shape: str, *, rows: int, seed: int) -> tuple[np.ndarray, ...] | None:
    """One replication's data: (X, t, y, true CATE, train rows, held-out rows), the same for every study of
    the semi-synthetic settings; None without the covariates."""
    X = _covariates(root, source, rows, seed=seed)
    if X is None:
        return None
    t, y, tau = _semi_synthetic(X, shape, seed=100 + seed)
    idx = np.random.default_rng(seed).permutation(len(y))
    return X, t, y, tau, idx[: int(0.9 * len(y))], idx[int(0.9 * len(y)):]


def semisynthetic_section(root, *, rows: int, reps: int, seed: int = 0, sources: tuple[str, ...] = SEMI_SOURCES,
                          shapes: tuple[str, ...] = SEMI_SHAPES) -> str:
    """sqrt(PEHE), ATE error and 90% coverage on a 90/10 split: selected estimator vs econml defaults."""
    from econml.dml import CausalForestDML

    from causal.estimation import ServedEstimator

    out = []
    for source in sources:
        for shape in shapes:
            acc: dict[str, list[float]] = {k: [] for k in
                                           ("sel_pehe", "def_pehe", "sel_ate", "def_ate", "sel_cov", "def_cov",
                                            "sel_width", "def_width", "twin_raw", "factor", "factor_twin")}
            chosen: list[str] = []
            for rep in range(reps):
                drawn = semi_rep(root, source, shape, rows=rows, seed=seed + rep)
                if drawn is None:
                    break
                X, t, y, tau, tr, te = drawn
                served = ServedEstimator(ModelConfig(random_state=seed + rep, n_estimators=100, nuisance_max_iter=100,
                                                     n_jobs=1)).fit(y[tr], t[tr], X=X[tr])
                chosen.append(served.name or "-")
                est, lo, hi = (a.reshape(-1) for a in served.interval(X[te], alpha=0.1))
                acc["sel_pehe"].append(float(np.sqrt(np.mean((est - tau[te]) ** 2))))
                acc["sel_ate"].append(abs(float(est.mean() - tau[te].mean())))
                acc["sel_cov"].append(float(np.mean((lo <= tau[te]) & (tau[te] <= hi))))
                acc["sel_width"].append(float(np.mean(hi - lo)))
                assert served.calibration is not None
                raw_cov = served.calibration.coverage_raw[0]
                if raw_cov is not None:
                    acc["twin_raw"].append(raw_cov)
                acc["factor"].append(served.calibration.factor[0])
                acc["factor_twin"].append(served.calibration.factor_twin[0])
                default = CausalForestDML(discrete_treatment=True, random_state=seed + rep, n_jobs=1)
                with threadpool_limits(limits=1):
                    default.fit(y[tr], t[tr], X=X[tr])
                    d_est = default.effect(X[te]).reshape(-1)
                    lo, hi = default.effect_interval(X[te], alpha=0.1)
                acc["def_pehe"].append(float(np.sqrt(np.mean((d_est - tau[te]) ** 2))))
                acc["def_ate"].append(abs(float(d_est.mean() - tau[te].mean())))
                acc["def_cov"].append(float(np.mean((lo.reshape(-1) <= tau[te]) & (tau[te] <= hi.reshape(-1)))))
                acc["def_width"].append(float(np.mean(hi - lo)))
            if not chosen:
                continue

            def mean(key: str, acc: dict[str, list[float]] = acc) -> str:
                return f"{np.mean(acc[key]):.3f}" if acc[key] else "n/a"
            ratio = np.mean(acc["sel_pehe"]) / np.mean(acc["def_pehe"])
            per_rep = [a / b for a, b in zip(acc["sel_pehe"], acc["def_pehe"], strict=True)]
            out.append({"covariates": source, "effect shape": shape, "reps": len(chosen),
                        "rep seeds": f"{seed}-{seed + len(chosen) - 1}",
                        "served (per rep)": "; ".join(chosen),
                        "sqrt(PEHE) served": mean("sel_pehe"), "sqrt(PEHE) econml CF defaults": mean("def_pehe"),
                        "ratio (goal <= 0.6)": f"{ratio:.2f}",
                        "ratio per rep (min-max)": f"{min(per_rep):.2f}-{max(per_rep):.2f}",
                        "abs ATE error served": mean("sel_ate"), "abs ATE error defaults": mean("def_ate"),
                        "90% coverage served (calibrated)": mean("sel_cov"),
                        "90% coverage per rep": "/".join(f"{c:.2f}" for c in acc["sel_cov"]),
                        "90% coverage defaults": mean("def_cov"),
                        "mean 90% width served": mean("sel_width"), "mean 90% width defaults": mean("def_width"),
                        "twin: raw coverage / factor (before the floor)":
                            f"{mean('twin_raw')} / {mean('factor')} ({mean('factor_twin')})"})
    cfg = ModelConfig()
    # the report uses rep seeds 0..; a run on other seeds (where a rule is chosen) is a section of its own
    tuning = f", rep seeds {seed}-{seed + reps - 1} (tuning)" if seed else ""
    return (f"{SEMI_HEADING}{tuning} ({rows:,} rows, 90/10 split, {reps} reps per setting)\n\n"
            "Served = `causal.estimation.ServedEstimator` with its defaults, exactly what the recommender serves: "
            f"estimator={cfg.estimator!r} ('select': the candidate family with the best econml R-loss "
            f"score, mean over {cfg.selection_folds} cross-fitted folds of the training part; 'stack': the convex mix of up to 3 "
            "families (weight >= 0.1) minimising that R-loss), refit on all of the training part, its 90% "
            "intervals calibrated on a semi-synthetic twin of the training part "
            f"(calibration_plant={cfg.calibration_plant!r}: "
            + {"twicing": "the twin plants 2 x reference - the family's refit of the reference, an effect as rough "
                          "relative to the reference as the truth is relative to the estimate; the reference is the "
                          f"served estimate, or for {', '.join(cfg.calibration_rigid)} (a linear final stage) "
                          f"{cfg.calibration_reference}'s estimate on the same rows",
               "dr_residual": "the twin plants the served estimate plus the misspecification share of its held-out "
                              "doubly robust residual",
               "estimate": "the twin plants the served estimate"}[cfg.calibration_plant]
            + "; causal/calibration.py); a family with its own intervals is never calibrated below them. "
            "'twin' column: the served model's own interval coverage on the twin (n/a: it has none) and the factor "
            "applied to its standard error, in brackets the twin's factor before that floor, mean over reps. "
            "Mean over reps; each rep draws new rows, a new effect and assignment, and a new split. "
            "The truth of the held-out 10% is never seen by selection or calibration. Defaults = econml "
            "`CausalForestDML(discrete_treatment=True)` with its own intervals. Goal: 90% coverage within "
            "0.85-0.95 in every setting.\n\n"
            + markdown_table(out))


def keep_unmeasured_rows(previous: str, section: str) -> str:
    """`section` (a semi-synthetic run) with the rows of the settings it did not measure (a --covariates or
    --shapes filter) taken from the same section of the `previous` results file, in setting order.

    Each kept row's 'rep seeds' column says which rep seeds made it; the previous section's own run
    notes are kept under the new table so every row can be traced to its command.
    """
    key = _section_key(section.splitlines()[0])
    block = next((text for k, text in _blocks(previous) if k == key), None)
    new_heading = section.splitlines()[0]
    new_rows = table_after(section, new_heading)
    if block is None or not new_rows:
        return section
    measured = {(r["covariates"], r["effect shape"]) for r in new_rows}
    kept = [r for r in table_after(block, block.splitlines()[0]) if (r["covariates"], r["effect shape"]) not in measured]
    if not kept:
        return section
    order = {setting: i for i, setting in enumerate((s, sh) for s in SEMI_SOURCES for sh in SEMI_SHAPES)}
    columns = list(new_rows[0])
    merged = sorted(new_rows + kept, key=lambda r: order.get((r["covariates"], r["effect shape"]), len(order)))
    table_start = section.index("\n|")
    notes = [line for line in block.splitlines() if line.startswith("_Re-run") or line.startswith("_Kept")]
    kept_names = ", ".join(f"{r['covariates']} {r['effect shape']}" for r in kept)
    return (section[:table_start + 1] + markdown_table([{c: r.get(c, "-") for c in columns} for r in merged])
            + f"\n_Kept from the previous version of this section (not re-measured by this run): {kept_names}; "
            "its notes follow._\n\n" + "\n\n".join(notes) + "\n")


def lalonde_section(root) -> str:
    folder = root / "causal" / "jobs_lalonde_causaldata"
    nsw, cps = folder / "nsw_mixtape.csv", folder / "cps_mixtape.csv"
    if not nsw.exists() or not cps.exists():
        return f"## LaLonde sanity check\n\n_skipped: {folder} not found_\n"
    from econml.dml import CausalForestDML
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    exp = pd.read_csv(nsw)
    obs = pd.concat([exp[exp.treat == 1], pd.read_csv(cps)], ignore_index=True)
    cov = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
    exp_diff = exp.loc[exp.treat == 1, "re78"].mean() - exp.loc[exp.treat == 0, "re78"].mean()
    naive = obs.loc[obs.treat == 1, "re78"].mean() - obs.loc[obs.treat == 0, "re78"].mean()
    X = obs[cov].to_numpy(float)
    X = np.column_stack([X, (obs.re74 == 0).astype(float), (obs.re75 == 0).astype(float)])
    est = CausalForestDML(model_y=HistGradientBoostingRegressor(max_iter=100, random_state=0),
                          model_t=HistGradientBoostingClassifier(max_iter=100, random_state=0),
                          discrete_treatment=True, n_estimators=400, min_samples_leaf=10, cv=3,
                          random_state=0, n_jobs=2)
    est.fit(obs.re78.to_numpy(float), obs.treat.to_numpy(int), X=X)
    treated = X[obs.treat.to_numpy() == 1]
    att = float(est.effect(treated).mean())
    lo, hi = est.ate_interval(treated, alpha=0.05)
    rows = [
        {"estimate": "experimental benchmark (NSW treated - NSW controls)", "effect on 1978 earnings ($)": exp_diff},
        {"estimate": "naive observational (NSW treated - CPS controls)", "effect on 1978 earnings ($)": naive},
        {"estimate": f"CausalForestDML, ATT on NSW treated (95% CI {lo:,.0f} .. {hi:,.0f})",
         "effect on 1978 earnings ($)": att},
    ]
    return ("## Real-data sanity: LaLonde (NSW treated + CPS controls, n="
            f"{len(obs):,})\n\n" + markdown_table(rows)
            + f"\nError vs experiment: {att - exp_diff:+,.0f} $ "
              f"(the naive comparison is off by {naive - exp_diff:+,.0f} $).\n")


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench causal")
    parser.add_argument("--quick", action="store_true", help="small sizes (20k train, 3k nodes)")
    parser.add_argument("--data", default=None)
    parser.add_argument("--train", type=int, default=None)
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--refute-rows", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate-seeds", type=int, default=5, help="seeds per planted gate case")
    parser.add_argument("--gate-rows", type=int, default=2000, help="rows per planted gate case")
    parser.add_argument("--only", choices=["all", "gate", "semisynthetic", "simulator", "scale", "candidates"],
                        default="all",
                        help="one part only, replacing its sections of bench/results/causal.md (gate: planted "
                             "cases and the gate on the simulator history; semisynthetic: estimator selection; "
                             "simulator: Deoxys tables, OPE, gate, served estimator; scale: timings; "
                             "candidates: every candidate family's sqrt(PEHE) on the semi-synthetic settings)")
    parser.add_argument("--semi-rows", type=int, default=2000, help="rows per semi-synthetic replication")
    parser.add_argument("--semi-reps", type=int, default=3, help="replications per semi-synthetic setting")
    parser.add_argument("--semi-seed", type=int, default=0,
                        help="first rep seed of the semi-synthetic section (the report uses 0; tune on others)")
    parser.add_argument("--covariates", default=",".join(SEMI_SOURCES),
                        help="semi-synthetic covariates, comma-separated: lalonde,simulator")
    parser.add_argument("--shapes", default=",".join(SEMI_SHAPES),
                        help="semi-synthetic effect shapes, comma-separated: smooth,step,heavy_tailed")
    args = parser.parse_args(argv)
    sources, shapes = tuple(args.covariates.split(",")), tuple(args.shapes.split(","))
    for given, allowed, flag in ((sources, SEMI_SOURCES, "--covariates"), (shapes, SEMI_SHAPES, "--shapes")):
        if not set(given) <= set(allowed):
            parser.error(f"{flag}: choose from {', '.join(allowed)}")
    started = time.perf_counter()
    _load(args)
    args.train = args.train or (20_000 if args.quick else 100_000)
    args.nodes = args.nodes or (3_000 if args.quick else 10_000)
    args.refute_rows = args.refute_rows or (1_500 if args.quick else 3_000)
    part: str | None = None
    if args.only == "gate":
        part = gate_section(args.gate_seeds, args.gate_rows) + "\n" + simulator_gate_section(args)
    elif args.only == "semisynthetic":
        part = semisynthetic_section(data_dir(args.data), rows=args.semi_rows, reps=args.semi_reps,
                                     seed=args.semi_seed, sources=sources, shapes=shapes)
        if results_path().exists():
            part = keep_unmeasured_rows(results_path().read_text(), part)
    elif args.only == "simulator":
        part = simulator_section(args)[0]
    elif args.only == "scale":
        part = scale_section(args, scale_measure(args))
    elif args.only == "candidates":
        from bench.causal_candidates import candidates_section

        part = candidates_section(data_dir(args.data), rows=args.semi_rows, reps=args.semi_reps, seed=args.semi_seed,
                                  dump=Path(os.environ["CANDIDATES_DUMP"]) if os.environ.get("CANDIDATES_DUMP") else None)
    if part is not None:
        _load(args)
        return _rerun_report(part, argv, started, args.loads)

    sim_text, scale = simulator_section(args)
    text = [sim_text, gate_section(args.gate_seeds, args.gate_rows), lalonde_section(data_dir(args.data)),
            semisynthetic_section(data_dir(args.data), rows=args.semi_rows, reps=args.semi_reps, sources=sources,
                                  shapes=shapes),
            scale_section(args, scale)]
    return "\n".join(text)
