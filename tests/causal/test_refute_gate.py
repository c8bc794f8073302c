"""The refutation gate on four planted cases with a known right answer (issue 12, part 4)."""

from __future__ import annotations

import numpy as np
import pytest

from causal.refute import RefuteConfig, e_value, refute_binary
from causal.synthetic import GATE_CASES, planted_gate_case

SMALL = RefuteConfig(n_estimators=40, num_simulations=2, placebo_permutations=200)


@pytest.mark.parametrize("name", list(GATE_CASES))
def test_gate_decides_planted_cases(name):
    case = planted_gate_case(name, n=2000, seed=1)
    report = refute_binary(case.X, case.t, case.y, config=SMALL, contrast=name,
                           negative_controls={"prev_downtime": case.negative_control})
    assert not report.errors
    assert report.passed == case.should_pass, report.to_dict()["summary"]
    failed = {c.refuter for c in report.checks if not c.passed}
    if name == "hidden_confounder":
        assert "negative_control:prev_downtime" in failed
    if name == "outcome_leak":
        assert "outcome_leakage" in failed


def test_placebo_has_a_p_value_and_subsets_use_distinct_seeds():
    case = planted_gate_case("clean", n=1500, seed=2)
    report = refute_binary(case.X, case.t, case.y, config=SMALL)
    checks = {c.refuter: c for c in report.checks}
    assert 0.0 < checks["placebo_treatment"].p_value < 0.01
    estimates = checks["data_subset"].detail.split("estimates ")[1]
    values = [float(v) for v in estimates.strip("[]").split(",")]
    assert len(set(values)) == len(values)  # distinct seeds -> distinct subsets -> distinct estimates


def test_e_value_grows_with_the_effect():
    assert e_value(0.0, sd_outcome=1.0) == pytest.approx(1.0)
    assert 1.0 < e_value(0.2, sd_outcome=1.0) < e_value(1.0, sd_outcome=1.0)


def test_one_sided_contrast_is_an_error_not_a_crash():
    X = np.zeros((50, 2))
    report = refute_binary(X, np.ones(50), np.arange(50.0), config=SMALL)
    assert not report.passed and report.errors
