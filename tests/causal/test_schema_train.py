"""Training on an operator's log through a declared schema: `aiops causal train --schema FILE` (issue 12, part 1)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from causal.data import EventFileError
from causal.refute import RefuteConfig
from causal.registry import ModelRegistry
from causal.schema import EventSchema
from causal.schema_model import train_with_schema
from causal.synthetic import simulate_events
from tests.causal.conftest import SMALL

# an operator's own vocabulary: other column names, other action names, a fifth action never taken
SPEC = {
    "features": [{"name": "ecc", "type": "int", "min": 0},
                 {"name": "hb_lost", "type": "int", "min": 0},
                 {"name": "pattern", "type": "cat", "categories": ["none", "intermittent", "sustained"]},
                 {"name": "load", "type": "float", "min": 0, "max": 1},
                 {"name": "age", "type": "float", "min": 0, "missing": "indicator"},
                 {"name": "itype", "type": "cat", "categories": ["gen5", "gen6", "gen7", "gen8"]},
                 {"name": "tenants", "type": "int", "min": 0, "missing": "indicator"}],
    "actions": ["leave", "restart", "move", "rebuild", "evacuate"], "baseline": "restart",
    "out_of_service": ["move", "rebuild", "evacuate"], "outcome": "minutes_down",
}
RENAME = {"hw_uncorrectable_errors": "ecc", "heartbeat_loss_count": "hb_lost", "heartbeat_pattern": "pattern",
          "cpu_util": "load", "node_age_days": "age", "sku": "itype", "vm_count": "tenants",
          "vm_downtime_min": "minutes_down"}
ACTION_NAMES = {"wait": "leave", "reboot": "restart", "redeploy": "move", "reimage": "rebuild"}


def _operator_log(n: int, seed: int) -> pd.DataFrame:
    frame = simulate_events(n, seed=seed).frame
    frame = frame[frame["action"] != "repair"]  # this fleet never evacuated a node
    log = frame.rename(columns=RENAME)[[*RENAME.values(), "action"]].copy()
    log["action"] = log["action"].map(ACTION_NAMES)
    rng = np.random.default_rng(seed)
    log["age"] = log["age"].astype(object)
    log.loc[rng.random(len(log)) < 0.2, "age"] = None  # inventory gaps: declared "indicator"
    return log.reset_index(drop=True)


@pytest.fixture(scope="module")
def schema():
    return EventSchema.from_dict(SPEC)


def test_train_on_a_declared_schema(tmp_path, schema):
    log = _operator_log(1500, seed=31)
    log.loc[3, "ecc"] = -2                     # out of range
    log.loc[7, "action"] = "format_disk"       # undeclared action
    path = tmp_path / "history.csv"
    log.to_csv(path, index=False)
    registry = ModelRegistry(tmp_path / "models")
    result = train_with_schema(path, schema, registry=registry, model_config=SMALL, run_refutation=False)

    assert result.metrics["rows_rejected"] == 2 and result.metrics["rows_valid"] == len(log) - 2
    lines = {r["line"]: r["reason"] for r in result.rejected_rows}
    assert "ecc" in lines[5] and "'format_disk'" in lines[9]       # file lines: header is line 1
    assert result.metrics["untrained_actions"] == ["evacuate"]
    model = result.model
    assert model.trained_actions == ["leave", "restart", "move", "rebuild"]
    table = model.effects(log.iloc[:50])
    assert table.effect.shape == (50, 5) and table.baseline == "restart"
    assert np.isnan(table.effect[:, 4]).all() and (table.effect[:, 1] == 0).all()
    assert "evacuate" not in set(model.best_actions(log.iloc[:200]))
    # the model card: the declaration, the matrix columns, the declared imputation
    meta = registry.get(result.version.version).meta
    assert EventSchema.from_dict(meta["schema"]) == schema
    assert "age_missing" in meta["model"]["features"] and "itype=gen6" in meta["model"]["features"]
    observed = pd.to_numeric(log["age"].drop(index=[3, 7]), errors="coerce").dropna()
    assert meta["model"]["missing_values"]["impute_with"]["age"] == pytest.approx(float(observed.median()))
    assert not result.promoted  # no gate run, no promotion


def test_the_gate_runs_on_the_declared_features(tmp_path, schema):
    log = _operator_log(1200, seed=32)
    gate = RefuteConfig(contrasts=("move",), sample_size=800, num_simulations=1, n_estimators=16)
    result = train_with_schema(log, schema, registry=None, model_config=SMALL, refute_config=gate)
    checks = result.refutation["checks"]
    assert checks and {c["contrast"] for c in checks} == {"move vs restart"}


def test_a_log_lacking_declared_columns_is_one_line(tmp_path, schema):
    path = tmp_path / "history.csv"
    _operator_log(50, seed=33).drop(columns=["hb_lost"]).to_csv(path, index=False)
    with pytest.raises(EventFileError) as err:
        train_with_schema(path, schema, registry=None, run_refutation=False)
    assert str(path) in str(err.value) and "['hb_lost']" in str(err.value) and "\n" not in str(err.value)
    # an "indicator" column may be absent altogether: missing in every row, not a file error
    valid, errors = schema.validate(_operator_log(20, seed=34).drop(columns=["age"]))
    assert len(valid) == 20 and not errors and valid["age"].isna().all()


def test_no_baseline_rows_is_refused(schema):
    log = _operator_log(300, seed=35)
    with pytest.raises(ValueError, match="baseline action 'restart'"):
        train_with_schema(log[log["action"] != "restart"], schema, registry=None, run_refutation=False)


def _cli(tmp_path, monkeypatch, *args):
    from services.cli import app

    monkeypatch.setenv("AIOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'aiops.db'}")
    return CliRunner().invoke(app, ["causal", *args])


def test_cli_trains_with_a_schema_and_stores_without_promoting(tmp_path, monkeypatch):
    from services.mitigation.registry import PolicyCache, model_registry
    from services.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    upgrade(url)
    schema_path, log_path = tmp_path / "schema.json", tmp_path / "history.jsonl"
    schema_path.write_text(json.dumps(SPEC))
    _operator_log(900, seed=36).to_json(log_path, orient="records", lines=True)
    result = _cli(tmp_path, monkeypatch, "train", "--schema", str(schema_path), "--data", str(log_path), "--quick")
    assert result.exit_code == 0, result.output
    assert "model v0001" in result.output and "not promoted" in result.output
    assert "evacuate" in result.output                                  # the untrained action is said
    registry = model_registry(url)
    assert registry.get("v0001").meta["schema"]["baseline"] == "restart"
    # forced active anyway, the actor's cache refuses it: it cannot observe the declared features
    registry.promote("v0001", force=True)
    assert PolicyCache().get(url) is None


@pytest.mark.parametrize("case", ["bad_schema", "no_data", "missing_schema"])
def test_cli_schema_problems_exit_2_with_one_line(tmp_path, monkeypatch, case):
    schema_path, log_path = tmp_path / "schema.json", tmp_path / "history.csv"
    _operator_log(30, seed=37).to_csv(log_path, index=False)
    if case == "bad_schema":
        schema_path.write_text(json.dumps({**SPEC, "baseline": "reboot"}))
    elif case != "missing_schema":
        schema_path.write_text(json.dumps(SPEC))
    args = ["train", "--schema", str(schema_path)] + ([] if case == "no_data" else ["--data", str(log_path)])
    result = _cli(tmp_path, monkeypatch, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    expected = {"bad_schema": "baseline 'reboot' not one of the actions", "no_data": "--schema needs --data",
                "missing_schema": "file not found"}[case]
    assert expected in errors[0]
