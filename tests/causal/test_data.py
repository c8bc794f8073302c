import json

import numpy as np
import pytest

from causal.data import (
    ACTIONS,
    COLUMNS,
    FEATURE_NAMES,
    ValidationError,
    append_event,
    featurize,
    load_events,
    write_events,
)
from causal.synthetic import simulate_events


@pytest.fixture()
def rows():
    return simulate_events(30, seed=3).frame


def test_csv_bad_rows_are_reported_with_line_and_reason(tmp_path, rows):
    path = tmp_path / "events.csv"
    write_events(rows, path)
    good = rows.iloc[0].to_dict()
    lines = []
    bad_action = {**good, "action": "format_disk"}
    negative = {**good, "vm_downtime_min": -3}
    text_number = {**good, "cpu_util": "high"}
    missing = {**good, "node_id": ""}
    for row in (bad_action, negative, text_number, missing):
        lines.append(",".join(str(row[c]) for c in COLUMNS))
    lines.append("only,three,fields")
    with path.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    result = load_events(path)
    assert result.n_valid == 30
    # header is line 1, 30 good rows are lines 2..31, the bad ones follow
    assert [e.line for e in result.errors] == [32, 33, 34, 35, 36]
    reasons = [e.reason for e in result.errors]
    assert "action" in reasons[0] and "format_disk" in reasons[0]
    assert "vm_downtime_min" in reasons[1] and "below minimum" in reasons[1]
    assert "cpu_util" in reasons[2] and "not a number" in reasons[2]
    assert "node_id: missing" == reasons[3]
    assert "expected" in reasons[4]
    assert result.frame["vm_interrupted"].dtype == bool


def test_jsonl_bad_lines(tmp_path, rows):
    path = tmp_path / "events.jsonl"
    write_events(rows.head(3), path)
    with path.open("a") as handle:
        handle.write("{not json\n")
        handle.write("[1, 2]\n")
        handle.write(json.dumps({**json.loads(rows.head(1).to_json(orient="records"))[0],
                                 "hour_of_day": 24}) + "\n")
    result = load_events(path)
    assert result.n_valid == 3
    assert [e.line for e in result.errors] == [4, 5, 6]
    assert "invalid JSON" in result.errors[0].reason
    assert "not an object" in result.errors[1].reason
    assert "hour_of_day" in result.errors[2].reason


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_append_roundtrip_and_rejects_bad_rows(tmp_path, rows, suffix):
    path = tmp_path / f"log.{suffix}"
    for record in rows.head(4).to_dict(orient="records"):
        append_event(path, record)
    before = path.read_text()
    with pytest.raises(ValidationError, match="action"):
        append_event(path, {**rows.iloc[0].to_dict(), "action": "nuke"})
    assert path.read_text() == before
    loaded = load_events(path)
    assert loaded.errors == []
    assert list(loaded.frame["event_id"]) == list(rows.head(4)["event_id"])
    assert np.allclose(loaded.frame["vm_downtime_min"], rows.head(4)["vm_downtime_min"])


def test_featurize_is_stateless_and_handles_unknown_sku(rows):
    X = featurize(rows)
    assert X.shape == (len(rows), len(FEATURE_NAMES))
    odd = rows.head(2).copy()
    odd["sku"] = "gen99"
    X2 = featurize(odd)
    assert X2[:, FEATURE_NAMES.index("sku_other")].tolist() == [1.0, 1.0]
    assert np.allclose(featurize(rows.head(2)), X[:2])


def test_simulator_logs_the_potential_outcome_of_the_taken_action():
    sim = simulate_events(500, seed=5)
    taken = np.array([ACTIONS.index(a) for a in sim.frame["action"]])
    rows = np.arange(500)
    assert np.allclose(sim.frame["vm_downtime_min"], sim.downtime[rows, taken])
    assert np.array_equal(sim.frame["vm_interrupted"], sim.interrupted[rows, taken])
    assert np.allclose(sim.logging_propensity.sum(axis=1), 1.0)
    assert set(sim.frame["action"]) == set(ACTIONS)
