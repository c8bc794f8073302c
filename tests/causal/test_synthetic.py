"""The simulator's truth must be a function of the observed features (so the oracle is learnable)."""

from collections import Counter

import numpy as np
import pytest

from causal.data import ACTIONS
from causal.legacy import legacy_rule
from causal.synthetic import FAULTS, fault_posterior, simulate_events


@pytest.fixture(scope="module")
def sim():
    return simulate_events(20_000, seed=21)


def test_truth_is_a_function_of_the_observed_features(sim):
    # the posterior is recomputed from the logged frame alone: nothing hidden leaks in
    post = fault_posterior(sim.frame)
    assert np.allclose(post, sim.fault_posterior)
    # the expected outcome is the posterior-weighted mix, so a shuffled copy of the same rows
    # gets the same truth row by row
    perm = np.random.default_rng(0).permutation(len(sim.frame))
    assert np.allclose(fault_posterior(sim.frame.iloc[perm].reset_index(drop=True)), post[perm])
    # the realized outcomes average to the feature-conditional expectation (mean-1 noise)
    ratio = sim.downtime / sim.expected_downtime
    assert abs(ratio.mean() - 1.0) < 0.03


def test_latent_fault_is_nearly_identifiable_and_posterior_calibrated(sim):
    fault = np.array([FAULTS.index(f) for f in sim.fault])
    post = sim.fault_posterior
    assert (post.argmax(axis=1) == fault).mean() > 0.88
    freq = np.bincount(fault, minlength=len(FAULTS)) / len(fault)
    assert np.allclose(post.mean(axis=0), freq, atol=0.01)
    # the feature oracle gets most of the clairvoyant's gain
    legacy = sim.policy_outcomes(legacy_rule(sim.frame))["downtime"]
    oracle = sim.policy_outcomes(sim.oracle_actions())["downtime"]
    clairvoyant = sim.policy_outcomes(sim.clairvoyant_actions())["downtime"]
    assert clairvoyant <= oracle < legacy
    assert (legacy - oracle) > 0.8 * (legacy - clairvoyant)


def test_effects_are_heterogeneous_and_realistic(sim):
    best = sim.oracle_actions()
    counts = Counter(best)
    assert all(counts[a] > 0.03 * len(best) for a in ACTIONS), counts
    frame = sim.frame
    definitive = frame["hw_fault_definitive"].to_numpy(bool)
    assert (best[definitive] == "repair").mean() > 0.9
    quiet_blip = ((frame["heartbeat_pattern"] == "intermittent") & (frame["hw_correctable_errors"] <= 1)
                  & (frame["hw_uncorrectable_errors"] == 0) & (frame["recent_incidents_30d"] <= 1)
                  & (frame["cpu_util"] < 0.6)).to_numpy()
    assert np.isin(best[quiet_blip], ["wait", "reboot"]).mean() > 0.9
    # more VMs make a migration costlier: redeploy wins less often on crowded nodes
    vm = frame["vm_count"].to_numpy()
    assert (best[vm <= 10] == "redeploy").mean() > (best[vm >= 30] == "redeploy").mean()


def test_logging_policy_is_confounded_with_overlap(sim):
    prop = sim.logging_propensity
    assert prop.min() > 0.005
    intermittent = (sim.frame["heartbeat_pattern"] == "intermittent").to_numpy()
    wait = ACTIONS.index("wait")
    assert prop[intermittent, wait].mean() > 1.5 * prop[~intermittent, wait].mean()
