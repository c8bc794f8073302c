"""Features a platform cannot observe are missing, imputed as the model card declares, and flagged (issue 12, item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causal.data import (
    ACTIONS,
    MAY_BE_MISSING,
    load_events,
    validate_frame,
    validate_row,
    write_events,
)
from causal.model import MitigationEffectModel
from causal.policy import MitigationPolicy, PolicyConfig
from causal.synthetic import simulate_events
from causal.train import train
from tests.causal.conftest import SMALL

HIDDEN = ("vm_count", "node_age_days", "sku", "hw_uncorrectable_errors")
OUTCOME_COLUMNS = ["action", "vm_downtime_min", "vm_interrupted", "capacity_out_hours"]


def _with_holes(frame: pd.DataFrame, *, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy().astype(object)
    for name in HIDDEN:
        out.loc[rng.random(len(out)) < share, name] = None
    return out


def test_only_features_that_may_be_missing_may_be_missing():
    row = simulate_events(3, seed=1).frame.iloc[0].to_dict()
    clean = validate_row({**row, "vm_count": None, "sku": "", "node_age_days": float("nan")})
    assert clean["vm_count"] is None and clean["sku"] is None and clean["node_age_days"] is None
    assert "heartbeat_loss_count" not in MAY_BE_MISSING
    with pytest.raises(ValueError, match="heartbeat_loss_count: missing"):
        validate_row({**row, "heartbeat_loss_count": None})
    with pytest.raises(ValueError, match="vm_count: .* below minimum"):  # present values are still checked
        validate_row({**row, "vm_count": -1})


def test_missing_cells_survive_a_csv_round_trip(tmp_path):
    holed = validate_frame(_with_holes(simulate_events(40, seed=2).frame, share=0.5, seed=2)).frame
    path = tmp_path / "events.csv"
    write_events(holed, path)
    loaded = load_events(path)
    assert loaded.n_valid == 40 and not loaded.errors
    for name in HIDDEN:
        assert loaded.frame[name].isna().sum() == holed[name].isna().sum() > 0


def test_fit_on_rows_with_missing_values_declares_its_imputation():
    history = simulate_events(1200, seed=4).frame
    holed = validate_frame(_with_holes(history, share=0.25, seed=4)).frame
    model = MitigationEffectModel(SMALL).fit(holed)
    card = model.metadata()["missing_values"]
    observed = holed["vm_count"].dropna().to_numpy(float)
    assert card["impute_with"]["vm_count"] == pytest.approx(float(np.median(observed)))
    assert card["impute_with"]["sku"] == holed["sku"].dropna().value_counts().index[0]
    assert sorted(card["indicators"]) == sorted(HIDDEN)
    assert card["missing_in_training"]["vm_count"] == int(holed["vm_count"].isna().sum())
    assert card["missing_in_training"]["cpu_util"] == 0
    assert model.metadata()["features"][-len(HIDDEN):] == [f"{n}_missing" for n in card["indicators"]]
    # the indicator is part of what the model sees: a row with vm_count missing is not the row at the median
    node = holed.iloc[[0]].drop(columns=OUTCOME_COLUMNS)
    at_median = node.assign(vm_count=card["impute_with"]["vm_count"])
    absent = node.assign(vm_count=np.nan)
    assert not np.allclose(model.matrix(at_median), model.matrix(absent))
    assert np.isfinite(model.effects(absent).effect[:, [ACTIONS.index(a) for a in model.trained_actions]]).all()


def test_train_runs_end_to_end_on_a_log_with_holes():
    holed = _with_holes(simulate_events(1200, seed=5).frame, share=0.2, seed=5)
    result = train(holed, registry=None, model_config=SMALL, run_refutation=False)
    assert result.metrics["rows_valid"] == 1200 and result.metrics["rows_rejected"] == 0
    assert set(result.metrics["missing_values"]) == set(HIDDEN)
    assert "holdout" in result.metrics and np.isfinite(result.metrics["holdout"]["dr_downtime_learned"])


def _nodes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=OUTCOME_COLUMNS).reset_index(drop=True)


def test_imputed_features_are_named_in_the_explanation(fitted, fresh):
    policy = MitigationPolicy(fitted)
    nodes = _nodes(fresh.frame.iloc[:30])
    complete = policy.recommend_batch(nodes)
    assert all(r.to_dict()["imputed_features"] == {} for r in complete.recommendations)
    holed = nodes.astype(object).assign(vm_count=None, sku=None)
    batch = policy.recommend_batch(holed)
    assert not batch.errors
    for rec in batch.recommendations:
        assert rec.to_dict()["imputed_features"] == {
            "vm_count": pytest.approx(fitted.imputation.values["vm_count"]), "sku": fitted.imputation.values["sku"]}


def test_a_decision_that_depends_on_an_imputed_feature_falls_back(fitted, fresh):
    """Reduced support: the choice must hold over the feature's plausible training values."""
    policy = MitigationPolicy(fitted)
    nodes = _nodes(fresh.frame.iloc[:60]).astype(object).assign(vm_count=None, node_age_days=None, sku=None)
    batch = policy.recommend_batch(nodes)
    spans = fitted.imputation.spans
    depends = fell_back = 0
    for i, rec in enumerate(batch.recommendations):
        # what the model would pick if each imputed feature took each plausible value instead
        variants = [nodes.iloc[[i]].assign(**{name: value}) for name in ("vm_count", "node_age_days", "sku")
                    for value in spans[name]]
        effect = fitted.point_effects(pd.concat(variants, ignore_index=True))
        picks = {ACTIONS[k] for k in np.where(np.isnan(effect), np.inf, effect).argmin(axis=1)}
        flagged = [r for r in rec.fallback_reasons if r.startswith("reduced support")]
        if picks - {rec.model_action}:
            depends += 1
            if rec.model_action != rec.legacy_action:  # fallback only changes anything when they differ
                assert rec.fallback and rec.action == rec.legacy_action and flagged
                fell_back += 1
        else:
            assert not flagged
    assert depends > 0 and fell_back > 0  # the synthetic effects do depend on vm_count / age / sku for some nodes
    unchecked = MitigationPolicy(fitted, config=PolicyConfig(imputation_check=False)).recommend_batch(nodes)
    assert not any(r.startswith("reduced support") for rec in unchecked.recommendations for r in rec.fallback_reasons)


def test_a_version_without_declared_imputation_refuses_missing_values(fitted, fresh):
    import copy

    old = copy.copy(fitted)
    del old.imputation  # as unpickled from a version stored before missing values were handled
    nodes = _nodes(fresh.frame.iloc[:2])
    assert old.matrix(nodes).shape == fitted.matrix(nodes).shape
    with pytest.raises(ValueError, match=r"features \['vm_count'\] are missing .*retrain"):
        MitigationPolicy(old).recommend(nodes.iloc[0].to_dict() | {"vm_count": None})
