"""Property tests (hypothesis): the normalisers, the JSON limits and the HCL escaper.

The promise under test is "no 5xx from input": whatever JSON arrives, the ingest path either
returns alerts or raises the one 4xx error type, and what it keeps is what was sent.
"""

from __future__ import annotations

import json
import string
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iac.hcl import Scope, evaluate, parse_expr, quote
from services.ingest.normalize import IngestError, fingerprint, normalize
from services.ingest.safejson import JsonRejected, parse_json

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=25)
FIELDS = ["name", "alertname", "title", "status", "severity", "service", "node", "cluster", "summary", "labels",
          "annotations", "startsAt", "starts_at", "fingerprint", "source", "version", "groupKey", "alerts",
          "commonLabels", "Records", "Type", "Message", "AlarmName", "Trigger", "NewStateValue", "StateChangeTime"]
alertish = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
safe_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60)


@PROFILE
@given(payload=json_values | alertish | st.lists(alertish, max_size=3))
def test_normalize_raises_only_ingest_errors(payload):
    try:
        alerts = normalize(payload)
    except IngestError:
        return
    for alert in alerts:
        assert alert.status in {"firing", "resolved"}
        assert 0 < len(alert.name) <= 200
        assert all(v is None or isinstance(v, str) for v in alert.labels.values())
        assert len(fingerprint(alert)) == 32


@PROFILE
@given(name=safe_text, node=safe_text, labels=st.dictionaries(safe_text, st.none() | safe_text, max_size=5),
       status=st.sampled_from(["firing", "resolved"]))
def test_generic_alert_is_kept_as_sent(name, node, labels, status):
    alert = normalize({"name": name, "node": node, "labels": labels, "status": status})[0]
    assert (alert.name, alert.node, alert.status) == (name, node, status)
    assert alert.labels == labels  # null stays null, nothing becomes "None"


@PROFILE
@given(labels=st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=5), st.text(max_size=5),
                              max_size=6))
def test_fingerprint_ignores_label_order(labels):
    forward = normalize({"name": "x", "labels": labels})[0]
    backward = normalize({"name": "x", "labels": dict(reversed(list(labels.items())))})[0]
    assert fingerprint(forward) == fingerprint(backward)


@PROFILE
@given(value=st.text(max_size=40) | st.integers() | st.floats(allow_nan=False))
def test_starts_at_is_a_time_or_refused(value):
    try:
        alert = normalize({"name": "x", "startsAt": value})[0]
    except IngestError as exc:
        assert "startsAt" in str(exc)
        return
    assert alert.starts_at is None or (isinstance(alert.starts_at, datetime) and alert.starts_at.tzinfo is not None)


@PROFILE
@given(body=st.binary(max_size=200))
def test_parse_json_refuses_any_bytes_with_its_own_error(body):
    try:
        parse_json(body)
    except JsonRejected as exc:
        assert exc.status in (400, 422)


finite_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | safe_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(safe_text, inner, max_size=4), max_leaves=20)


@PROFILE
@given(value=finite_json)
def test_parse_json_round_trips_what_it_accepts(value):
    assert parse_json(json.dumps(value).encode()) == value


@PROFILE
@given(depth=st.integers(33, 3000))
def test_parse_json_refuses_deep_nesting(depth):
    with pytest.raises(JsonRejected):
        parse_json(("[" * depth + "]" * depth).encode())


@PROFILE
@given(text=st.text(max_size=80))
def test_hcl_quote_round_trips_and_never_interpolates(text):
    """Any trace text quoted into HCL parses back to exactly that text, with no template sequence left."""
    literal = quote(text)
    node = parse_expr(literal, 0, len(literal))
    assert evaluate(node, Scope({}, {})) == text
