"""A fleet simulator of unhealthy-node episodes with known potential outcomes.

WHY: on real logs only the outcome of the action actually taken is observed, so no policy can be
scored against the truth. Here every node has a hidden fault kind; its observable signals are
noisy symptoms of that fault, and the downtime of *every* action is drawn (with common random
numbers per node) and kept. Effects are heterogeneous: which action is best depends on the
hidden fault and on the node's load (VM count, memory pressure, heartbeat losses).

Episodes are logged under a *confounded* legacy policy: mostly the legacy runbook (see
`causal.legacy`), and otherwise operators' judgment calls that depend on the same symptoms that
drive the outcome (intermittent heartbeats -> more "wait", many corrected errors -> more
"redeploy"). The logging propensities are kept too, so off-policy estimates can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal.data import ACTIONS, KNOWN_SKUS, action_index
from causal.legacy import legacy_rule

FAULTS: tuple[str, ...] = ("transient", "os_corruption", "degraded_hw", "failed_hw", "kernel_hang")

# Median VM downtime (minutes) per hidden fault (rows) and action (columns, ACTIONS order).
BASE_DOWNTIME = np.array([
    #  wait  reboot redeploy reimage repair
    [4.0, 14.0, 20.0, 45.0, 60.0],     # transient: it clears by itself
    [90.0, 50.0, 22.0, 16.0, 60.0],    # os corruption: reboot only helps for a while
    [80.0, 65.0, 12.0, 55.0, 24.0],    # degraded hardware: move the VMs off before it dies
    [200.0, 160.0, 30.0, 130.0, 22.0],  # failed hardware: send to repair
    [75.0, 10.0, 22.0, 40.0, 60.0],    # kernel hang: a reboot clears it
])
# Probability that the VMs are interrupted (restarted or lost) per hidden fault and action: a
# host reboot or reimage restarts every VM, live migration (redeploy) and a drained repair rarely
# do unless the node is already dead, waiting only hurts when the fault does not clear by itself.
INTERRUPT_PROB = np.array([
    #  wait  reboot redeploy reimage repair
    [0.10, 1.0, 0.10, 1.0, 0.20],   # transient
    [0.70, 1.0, 0.15, 1.0, 0.20],   # os corruption
    [0.60, 1.0, 0.10, 1.0, 0.15],   # degraded hardware
    [0.95, 1.0, 0.60, 1.0, 0.60],   # failed hardware
    [0.95, 0.95, 0.95, 0.95, 0.95],  # kernel hang: the VMs are already down
])
# Capacity taken out of service (node-hours) per action.
BASE_CAPACITY_HOURS = np.array([0.0, 0.25, 4.0, 3.0, 72.0])


@dataclass
class SimulatedEvents:
    """Logged episodes plus the ground truth a real fleet never shows."""

    frame: pd.DataFrame                 # schema of causal.data (what the model sees)
    fault: np.ndarray                   # hidden fault kind per node
    downtime: np.ndarray                # (n, K) potential VM downtime for every action
    interrupted: np.ndarray             # (n, K) potential interruption (bool) for every action
    capacity: np.ndarray                # (n, K) potential capacity-hours out of service
    expected_downtime: np.ndarray       # (n, K) noise-free mean downtime
    logging_propensity: np.ndarray      # (n, K) P(action | node) of the logging policy

    def policy_outcomes(self, actions: np.ndarray) -> dict[str, float]:
        """True mean downtime, interruption rate and capacity of a policy's actions."""
        col = action_index(actions)
        rows = np.arange(len(col))
        return {
            "downtime": float(self.downtime[rows, col].mean()),
            "interruption_rate": float(self.interrupted[rows, col].mean()),
            "capacity_hours": float(self.capacity[rows, col].mean()),
        }

    def oracle_actions(self) -> np.ndarray:
        """The action with the lowest *expected* downtime for each node (knows the hidden fault)."""
        return np.array(ACTIONS, dtype=object)[self.expected_downtime.argmin(axis=1)]

    def subset(self, index: np.ndarray) -> SimulatedEvents:
        return SimulatedEvents(
            frame=self.frame.iloc[index].reset_index(drop=True), fault=self.fault[index],
            downtime=self.downtime[index], interrupted=self.interrupted[index],
            capacity=self.capacity[index], expected_downtime=self.expected_downtime[index],
            logging_propensity=self.logging_propensity[index])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category per row from row-wise probabilities (vectorized)."""
    u = rng.random(len(probs))[:, None]
    return np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1)


def simulate_events(n: int, *, seed: int = 0, legacy_share: float = 0.6,
                    n_clusters: int = 20) -> SimulatedEvents:
    """Simulate `n` unhealthy-node episodes logged under the confounded legacy policy.

    `legacy_share` is the probability the logged action is the legacy rule's; the rest are
    symptom-dependent operator choices (which gives the data its overlap and its confounding).
    """
    rng = np.random.default_rng(seed)
    K = len(ACTIONS)
    sku_idx = rng.choice(len(KNOWN_SKUS), size=n, p=[0.2, 0.3, 0.3, 0.2])
    sku = np.array(KNOWN_SKUS)[sku_idx]
    age_days = rng.gamma(2.0, 120.0, size=n) + (len(KNOWN_SKUS) - 1 - sku_idx) * 300.0
    mem_util = rng.beta(4, 3, size=n)
    cpu_util = np.clip(0.6 * mem_util + rng.beta(2, 4, size=n) * 0.5, 0, 1)
    vm_count = rng.integers(1, 41, size=n)
    hour = rng.integers(0, 24, size=n)
    peak = ((hour >= 9) & (hour <= 18)).astype(float)

    # hidden fault: priors shift with age (hardware wear), memory pressure (hangs), peak hours
    age_years = age_days / 365.0
    logits = np.column_stack([
        0.8 + 0.6 * peak,
        np.full(n, 0.0),
        -0.6 + 0.45 * age_years,
        -1.4 + 0.5 * age_years,
        -0.8 + 2.5 * (mem_util - 0.5),
    ])
    fault = _choice_rows(rng, _softmax(logits))

    # symptoms caused by the fault (noisy, overlapping)
    corr_mean = np.array([1.0, 1.5, 30.0, 10.0, 2.0])[fault]
    corrected = rng.poisson(corr_mean * rng.gamma(2.0, 0.5, size=n))
    uncorr = rng.poisson(np.array([0.03, 0.05, 0.3, 1.6, 0.05])[fault])
    definitive = (fault == 3) & (rng.random(n) < 0.35)
    pattern_p = np.array([
        [0.2, 0.7, 0.1], [0.2, 0.4, 0.4], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.05, 0.15, 0.8],
    ])[fault]
    pattern_idx = _choice_rows(rng, pattern_p)
    pattern = np.array(["none", "intermittent", "sustained"])[pattern_idx]
    hb_count = rng.poisson(np.array([0.3, 3.0, 8.0])[pattern_idx])
    recent = rng.poisson(np.where(fault == 1, 3.5, 0.8))

    # potential outcomes with common random numbers per node
    D = BASE_DOWNTIME[fault].copy()
    D[:, 0] *= np.where(fault == 0, 1.0 + 0.15 * hb_count, 1.0)       # long silences clear slower
    D[:, 1] *= 0.6 + 0.8 * mem_util                                    # reboots of loaded nodes
    D[:, 2] *= 0.5 + vm_count / 30.0                                  # migrations scale with VMs
    D[:, 3] *= 0.8 + 0.1 * age_years
    expected = D.copy()
    noise = np.exp(rng.normal(0.0, 0.3, size=(n, 1)) + rng.normal(0.0, 0.15, size=(n, K)))
    downtime = expected * noise
    u = rng.random((n, 1))
    interrupted = u < INTERRUPT_PROB[fault]
    capacity = BASE_CAPACITY_HOURS[None, :] * np.exp(rng.normal(0.0, 0.2, size=(n, K)))

    frame = pd.DataFrame({
        "event_id": [f"ev-{seed}-{i}" for i in range(n)],
        "node_id": [f"node-{seed}-{i}" for i in range(n)],
        "cluster": [f"cl-{c:02d}" for c in rng.integers(0, n_clusters, size=n)],
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(np.sort(rng.integers(0, 365 * 86400, size=n)), unit="s"),
        "hw_correctable_errors": corrected.astype(np.int64),
        "hw_uncorrectable_errors": uncorr.astype(np.int64),
        "hw_fault_definitive": definitive,
        "heartbeat_loss_count": hb_count.astype(np.int64),
        "heartbeat_pattern": pattern,
        "cpu_util": cpu_util, "mem_util": mem_util,
        "vm_count": vm_count.astype(np.int64), "node_age_days": age_days, "sku": sku,
        "recent_incidents_30d": recent.astype(np.int64), "hour_of_day": hour.astype(np.int64),
    })
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    # confounded logging policy: legacy rule or a symptom-driven operator choice
    legacy = legacy_rule(frame)
    legacy_onehot = (legacy[:, None] == np.array(ACTIONS)[None, :]).astype(float)
    op_logits = np.column_stack([
        1.2 * (pattern == "intermittent") - 0.2 * hb_count / 3.0,
        np.full(n, 0.3),
        0.4 * np.log1p(corrected) - 0.6,
        0.5 * recent - 1.0,
        0.8 * uncorr + 1.5 * definitive - 1.0,
    ])
    operator = _softmax(op_logits)
    operator = 0.9 * operator + 0.1 / K          # every action stays possible (overlap)
    propensity = legacy_share * legacy_onehot + (1.0 - legacy_share) * operator
    taken = _choice_rows(rng, propensity)
    rows = np.arange(n)
    frame["action"] = np.array(ACTIONS)[taken]
    frame["vm_downtime_min"] = downtime[rows, taken]
    frame["vm_interrupted"] = interrupted[rows, taken]
    frame["capacity_out_hours"] = capacity[rows, taken]
    return SimulatedEvents(frame=frame, fault=np.array(FAULTS)[fault], downtime=downtime,
                           interrupted=interrupted, capacity=capacity, expected_downtime=expected,
                           logging_propensity=propensity)
