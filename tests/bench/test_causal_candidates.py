"""`bench causal --only candidates`: every family's held-out error, the per-rep oracle, and what
selection serves from the default race and from the race plus the opt-in families (issue 12)."""

from __future__ import annotations

import numpy as np

import bench.causal
import bench.causal_candidates as cc


class _Fixed:
    """A 'fitted' CATE model with effect scale * 3 x0 (fit learns nothing)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def fit(self, Y, T, *, X):
        return self

    def const_marginal_effect(self, X):
        return (self.scale * 3.0 * np.asarray(X)[:, 0]).reshape(-1, 1)


def _planted(monkeypatch):
    def covariates(root, name, rows, seed):
        return np.random.default_rng(seed).normal(size=(rows, 3))

    def semi(X, shape, seed):
        rng = np.random.default_rng(seed)
        t = (rng.random(len(X)) < 1 / (1 + np.exp(-X[:, 1]))).astype(int)
        tau = 3.0 * X[:, 0]
        return t, X[:, 1] + tau * t + rng.normal(size=len(X)), tau

    families = {"causal_forest_dml_econml_defaults": lambda: _Fixed(0.0), "decoy": lambda: _Fixed(-1.0),
                "linear_dml_auto": lambda: _Fixed(1.0)}     # the truth, but an opt-in family
    monkeypatch.setattr(bench.causal, "_covariates", covariates)
    monkeypatch.setattr(bench.causal, "_semi_synthetic", semi)
    monkeypatch.setattr(cc, "served_candidates", lambda config: families)


def test_the_oracle_and_the_two_pools(monkeypatch):
    _planted(monkeypatch)
    records = cc.candidates_measure(None, rows=900, reps=1, seed=50)
    assert len(records) == 6 and {r["rep"] for r in records} == {50}
    for r in records:
        assert r["pehe"]["linear_dml_auto"] < 1e-9 < r["pehe"]["causal_forest_dml_econml_defaults"]
        # the default race cannot pick the opt-in truth; with it, selection finds it
        assert r["select_default"][0] == "causal_forest_dml_econml_defaults"
        assert r["select_extended"] == ("linear_dml_auto", r["pehe"]["linear_dml_auto"])
        assert set(r["stack_default"][0]) <= {"causal_forest_dml_econml_defaults", "decoy"}


def test_the_section_reports_ratios_to_the_defaults(monkeypatch):
    _planted(monkeypatch)
    text = cc.candidates_section(None, rows=900, reps=1, seed=50)
    assert text.startswith("## Candidate families, rep seeds 50-50")
    rows = [line for line in text.splitlines() if line.startswith("| lalonde") or line.startswith("| simulator")]
    assert len(rows) == 6
    assert all("0.000 (0.00)" in row for row in rows)   # the oracle and the extended pick: the truth
