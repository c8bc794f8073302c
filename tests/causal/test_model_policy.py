import json

import numpy as np
import pytest

from causal.data import ACTIONS, OUT_OF_SERVICE_ACTIONS
from causal.legacy import legacy_rule
from causal.policy import ClusterCapacity, MitigationPolicy, PolicyConfig


def _nodes(sim):
    return sim.frame.drop(columns=["action", "vm_downtime_min", "vm_interrupted", "capacity_out_hours"])


def test_effects_shape_intervals_and_signal(fitted, fresh):
    table = fitted.effects(fresh.frame, alpha=0.1)
    n = len(fresh.frame)
    assert table.effect.shape == table.lower.shape == (n, len(ACTIONS))
    base = ACTIONS.index("reboot")
    assert np.all(table.effect[:, base] == 0)
    assert np.all(table.lower <= table.effect + 1e-9) and np.all(table.effect <= table.upper + 1e-9)
    assert np.allclose(table.propensity.sum(axis=1), 1.0)
    truth = fresh.expected_downtime - fresh.expected_downtime[:, [base]]
    k = ACTIONS.index("redeploy")
    assert np.corrcoef(truth[:, k], table.effect[:, k])[0, 1] > 0.5
    # average effect of redeploy vs reboot has the right sign and rough size
    assert table.effect[:, k].mean() < -10 and truth[:, k].mean() < -10


def test_learned_policy_beats_legacy_on_true_outcomes(fitted, fresh):
    policy = MitigationPolicy(fitted, config=PolicyConfig(fallback_enabled=False))
    result = policy.recommend_batch(_nodes(fresh))
    learned = fresh.policy_outcomes(result.actions)
    legacy = fresh.policy_outcomes(legacy_rule(fresh.frame))
    assert learned["downtime"] < 0.8 * legacy["downtime"]
    assert result.fallback_rate == 0.0


def test_fallback_when_uncertain_or_out_of_support(fitted, fresh):
    nodes = _nodes(fresh)
    legacy = legacy_rule(fresh.frame)
    strict = MitigationPolicy(fitted, config=PolicyConfig(max_interval_width=0.0,
                                                          hard_evidence_enabled=False))
    result = strict.recommend_batch(nodes)
    # every decision that differs from legacy has a positive-width interval -> falls back
    assert np.array_equal(result.actions, legacy)
    differs = np.array([r.model_action != r.legacy_action for r in result.recommendations])
    assert result.fallback_rate == pytest.approx(differs.mean())
    assert all("interval width" in " ".join(r.fallback_reasons)
               for r in result.recommendations if r.fallback)
    assert strict.fallback_rate == pytest.approx(result.fallback_rate)

    support = MitigationPolicy(fitted, config=PolicyConfig(min_propensity=1.01,
                                                           require_significant=False,
                                                           max_interval_width=1e9))
    res2 = support.recommend_batch(nodes)
    assert all(any("outside support" in s for s in r.fallback_reasons)
               for r in res2.recommendations if r.fallback)
    assert res2.fallback_rate == pytest.approx(differs.mean())

    default = MitigationPolicy(fitted).recommend_batch(nodes)
    assert 0.0 < default.fallback_rate < 1.0
    for r in default.recommendations:
        if r.fallback:
            assert r.action == r.legacy_action and r.decided_by == "fallback"
        elif r.override is None:
            assert r.action == r.model_action


def test_overrides_pin_hard_evidence_and_capacity_guard(fitted, fresh):
    nodes = _nodes(fresh).head(200).copy()
    nodes["cluster"] = "cl-a"
    nodes.loc[nodes.index[0], "hw_fault_definitive"] = True
    pinned = nodes.iloc[1]["node_id"]
    policy = MitigationPolicy(fitted, config=PolicyConfig(max_out_of_service_fraction=0.1))
    clusters = {"cl-a": ClusterCapacity(total_nodes=100, out_of_service=7)}
    result = policy.recommend_batch(nodes, pins={pinned: "wait"}, clusters=clusters)
    recs = result.recommendations
    assert recs[0].action == "repair"
    if recs[0].model_action != "repair" and not recs[0].fallback:
        assert recs[0].override == "hard_evidence"
    assert recs[1].action == "wait" and recs[1].override == "operator_pin"
    out = [r for r in recs if r.action in OUT_OF_SERVICE_ACTIONS]
    # 7 already out, limit 10: at most 3 more, except forced repairs (hard evidence)
    assert len([r for r in out if r.override != "hard_evidence"]) <= 3
    guarded = [r for r in recs if r.override == "capacity_guard"]
    assert guarded, "a 200-node batch must hit the guard"
    for r in guarded:
        assert r.action not in OUT_OF_SERVICE_ACTIONS and "out of service" in r.override_reason
    assert result.summary()["overrides"]["capacity_guard"] == len(guarded)


def test_hard_evidence_forces_the_configured_action(fitted, fresh):
    nodes = _nodes(fresh).head(30).copy()
    nodes["hw_fault_definitive"] = True
    policy = MitigationPolicy(fitted, config=PolicyConfig(hard_evidence_action="wait"))
    recs = policy.recommend_batch(nodes).recommendations
    assert all(r.action == "wait" for r in recs)
    forced = [r for r in recs if r.override == "hard_evidence"]
    assert forced and all("definitive hardware fault" in r.override_reason for r in forced)
    assert all(r.decided_by == "override" for r in forced)


def test_recommendation_explains_itself_json_safe(fitted, fresh):
    policy = MitigationPolicy(fitted, model_version="v0007")
    node = _nodes(fresh).iloc[0].to_dict()
    rec = policy.recommend(node)
    data = json.loads(json.dumps(rec.to_dict()))
    assert set(data["estimates"]) == set(ACTIONS)
    for est in data["estimates"].values():
        assert est["lower"] <= est["effect"] <= est["upper"]
    assert data["model_version"] == "v0007" and data["baseline"] == "reboot"
    assert data["action"] in ACTIONS and data["decided_by"] in {"model", "fallback", "override"}
    with pytest.raises(ValueError, match="cpu_util"):
        policy.recommend({**node, "cpu_util": 3.0})
    with pytest.raises(ValueError, match="pinned"):
        policy.recommend(node, pin="explode")


def test_fallback_confidence_is_monotone_and_explained(fitted, fresh):
    nodes = _nodes(fresh)
    rates = []
    for confidence in (0.5, 0.8, 0.95):
        cfg = PolicyConfig(confidence=confidence, max_interval_width=1e9, min_propensity=0.0)
        result = MitigationPolicy(fitted, config=cfg).recommend_batch(nodes)
        rates.append(result.fallback_rate)
        for r in result.recommendations:
            if r.fallback:
                assert any(f"{confidence:.0%} sure" in s for s in r.fallback_reasons)
    # the model's choice is its argmin, so at 50% it is always "sure enough"
    assert rates[0] <= 0.01
    assert rates[0] <= rates[1] <= rates[2] and rates[2] > 0.0
