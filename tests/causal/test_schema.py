"""A declared schema: validated declaration, validated log, missing values as declared (issue 12, part 1)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from causal.schema import EventSchema, SchemaError, SchemaFeaturizer

SPEC = {
    "features": [{"name": "ecc_errors", "type": "int", "min": 0},
                 {"name": "instance_type", "type": "cat", "categories": ["m5", "c6"]},
                 {"name": "age_days", "type": "float", "min": 0, "missing": "indicator"},
                 {"name": "definitive", "type": "bool"}],
    "actions": ["wait", "reboot", "migrate"], "baseline": "reboot", "out_of_service": ["migrate"],
}


def test_schema_file_loads(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SPEC))
    schema = EventSchema.load(path)
    assert schema.actions == ("wait", "reboot", "migrate") and schema.baseline == "reboot"
    assert [f.name for f in schema.features] == ["ecc_errors", "instance_type", "age_days", "definitive"]


@pytest.mark.parametrize("change, message", [
    ({"baseline": "reimage"}, "baseline 'reimage' not one of the actions"),
    ({"actions": ["wait"]}, "at least two distinct actions"),
    ({"out_of_service": ["repair"]}, "undeclared actions"),
    ({"features": [{"name": "x", "type": "text"}]}, "type 'text' not one of"),
    ({"features": [{"name": "x", "type": "cat"}]}, "needs 'categories'"),
    ({"features": [{"name": "x", "type": "int"}, {"name": "x", "type": "int"}]}, "declared twice"),
    ({"features": [{"name": "x", "type": "int", "missing": "zero"}]}, "missing 'zero'"),
])
def test_bad_declarations_are_named(change, message):
    with pytest.raises(SchemaError, match=message):
        EventSchema.from_dict({**SPEC, **change})


def test_bad_schema_file_names_the_file(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text("{not json")
    with pytest.raises(SchemaError, match="schema.json: not a JSON schema"):
        EventSchema.load(path)


def _log():
    return pd.DataFrame({
        "ecc_errors": [0, 3, -1, 2, 5], "instance_type": ["m5", "c6", "m5", "x9", "c6"],
        "age_days": [10.0, None, 5.0, 1.0, 40.0], "definitive": ["true", "0", "1", "no", "false"],
        "action": ["wait", "reboot", "reboot", "wait", "format"],
        "vm_downtime_min": [1.0, 2.0, 3.0, 4.0, 5.0]})


def test_log_validated_against_schema_with_reasons():
    schema = EventSchema.from_dict(SPEC)
    valid, errors = schema.validate(_log())
    assert len(valid) == 2
    reasons = dict(errors)
    assert "ecc_errors" in reasons[2] and "'x9' not one of" in reasons[3] and "'format'" in reasons[4]
    assert schema.actions_without_data(valid) == ["migrate"]


def test_missing_column_is_named():
    schema = EventSchema.from_dict(SPEC)
    with pytest.raises(SchemaError, match="lacks declared columns \\['ecc_errors'\\]"):
        schema.validate(_log().drop(columns=["ecc_errors"]))


def test_missing_value_becomes_an_indicator_never_a_constant():
    schema = EventSchema.from_dict(SPEC)
    valid, _ = schema.validate(_log())
    featurizer = SchemaFeaturizer(schema).fit(valid)
    X = featurizer.transform(valid)
    names = featurizer.feature_names
    assert names == ["ecc_errors", "instance_type=m5", "instance_type=c6", "age_days",
                     "age_days_missing", "definitive"]
    assert X[:, names.index("age_days_missing")].tolist() == [0.0, 1.0]
    assert X[1, names.index("age_days")] == featurizer.medians_["age_days"] == 10.0
    assert np.isfinite(X).all()
