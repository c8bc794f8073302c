"""A fleet simulator of unhealthy-node episodes with known potential outcomes.

WHY: on real logs only the outcome of the action actually taken is observed, so no policy can be
scored against the truth. Here every potential outcome is drawn and kept.

Generative story. A node has a latent fault kind (transient blip, OS corruption, degraded
hardware, failed hardware, kernel hang) whose prior depends on context (age, memory pressure,
peak hours). The fault causes the observed symptoms: corrected/uncorrectable memory errors, a
definitive hardware-fault flag, the heartbeat-loss pattern and count, CPU spinning (soft lockup)
and repeat incidents. The symptoms are distinctive enough that the fault is *nearly identifiable*
from the features, and the simulator computes the exact Bayes posterior P(fault | features)
(`fault_posterior`). The true expected outcome of each action is therefore a function of the
OBSERVED features only:

    E[downtime | x, a] = sum_f P(f | x) * D_f(a, x)

where D_f(a, x) is the fault's base downtime modified by load (more VMs make reboots, reimages,
drains and migrations slower; memory pressure slows reboots; long silences make waiting on a
blip slower; old nodes reimage slower). What is left (which fault a node really has, and log-
normal timing noise with mean 1) is outcome noise. The oracle (`oracle_actions`) is the argmin
of E[downtime | x, a], so it is achievable in principle by a model trained on logged data.

Episodes are logged under a *confounded* policy: mostly the legacy runbook (`causal.legacy`), and
otherwise operators' judgment calls driven by the same symptoms that drive the outcome
(intermittent heartbeats -> "wait", many corrected errors -> "redeploy", repeat incidents ->
"reimage", uncorrectable errors -> "repair"), with a floor on every action's probability
(overlap). The logging propensities are kept so off-policy estimates can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammaln, log_softmax

from causal.data import ACTIONS, HEARTBEAT_PATTERNS, KNOWN_SKUS, action_index
from causal.legacy import legacy_rule

FAULTS: tuple[str, ...] = ("transient", "os_corruption", "degraded_hw", "failed_hw", "kernel_hang")

# Median VM downtime (minutes) per fault (rows) and action (columns, ACTIONS order) for an
# average node; `_downtime_by_fault` scales the columns by the node's load.
BASE_DOWNTIME = np.array([
    #  wait  reboot redeploy reimage repair
    [4.0, 14.0, 20.0, 45.0, 60.0],     # transient: it clears by itself
    [90.0, 50.0, 22.0, 16.0, 60.0],    # os corruption: a reboot only helps for a while
    [80.0, 65.0, 12.0, 55.0, 24.0],    # degraded hardware: move the VMs off before it dies
    [200.0, 160.0, 30.0, 130.0, 22.0],  # failed hardware: send to repair
    [75.0, 10.0, 22.0, 40.0, 60.0],    # kernel hang: a reboot clears it
])
# Probability that the VMs are interrupted (restarted or lost) per fault and action: a host
# reboot or reimage restarts every VM, live migration (redeploy) and a drained repair rarely do
# unless the node is already dead, waiting only hurts when the fault does not clear by itself.
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

# Symptom model: P(symptoms | fault). Each row/entry is in FAULTS order.
CORRECTED_MEAN = np.array([0.5, 1.0, 40.0, 12.0, 1.0])   # negative binomial mean ...
CORRECTED_SHAPE = 2.0                                      # ... and shape (over-dispersion)
UNCORRECTABLE_RATE = np.array([0.02, 0.05, 0.4, 3.0, 0.05])  # Poisson
DEFINITIVE_PROB = np.array([1e-4, 1e-4, 0.02, 0.5, 1e-4])
PATTERN_PROB = np.array([           # none, intermittent, sustained
    [0.10, 0.85, 0.05],
    [0.15, 0.60, 0.25],
    [0.60, 0.30, 0.10],
    [0.10, 0.20, 0.70],
    [0.02, 0.08, 0.90],
])
HEARTBEAT_RATE = np.array([0.3, 3.0, 8.0])                 # Poisson rate per pattern ...
HEARTBEAT_FAULT_SCALE = np.array([0.7, 1.0, 1.0, 1.3, 1.5])  # ... times a per-fault scale
RECENT_RATE = np.array([0.6, 4.0, 1.0, 1.2, 0.8])         # repeat incidents in 30 days
CPU_BETA = np.array([[2.0, 4.0], [2.0, 4.0], [2.0, 4.0], [2.0, 4.0], [8.0, 2.0]])  # soft lockup
TIMING_SIGMA = (0.3, 0.15)          # log-normal noise: per node (shared), per action


@dataclass
class SimulatedEvents:
    """Logged episodes plus the ground truth a real fleet never shows."""

    frame: pd.DataFrame                 # schema of causal.data (what the model sees)
    fault: np.ndarray                   # latent fault kind per node
    downtime: np.ndarray                # (n, K) realized potential VM downtime for every action
    interrupted: np.ndarray             # (n, K) realized potential interruption (bool)
    capacity: np.ndarray                # (n, K) potential capacity-hours out of service
    expected_downtime: np.ndarray       # (n, K) E[downtime | observed features, action]
    logging_propensity: np.ndarray      # (n, K) P(action | node) of the logging policy
    fault_posterior: np.ndarray         # (n, F) P(fault | observed features), exact
    fault_expected_downtime: np.ndarray  # (n, K) E[downtime | latent fault, features, action]

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
        """The best action given the observed features (argmin of the true E[downtime | x, a])."""
        return np.array(ACTIONS, dtype=object)[self.expected_downtime.argmin(axis=1)]

    def clairvoyant_actions(self) -> np.ndarray:
        """The best action if the latent fault were known too (not achievable from features)."""
        return np.array(ACTIONS, dtype=object)[self.fault_expected_downtime.argmin(axis=1)]

    def true_effects(self, baseline: str = "reboot") -> np.ndarray:
        """(n, K) true conditional effects E[Y|x,a] - E[Y|x,baseline] (what the model estimates)."""
        k = ACTIONS.index(baseline)
        return self.expected_downtime - self.expected_downtime[:, [k]]

    def subset(self, index: np.ndarray) -> SimulatedEvents:
        return SimulatedEvents(
            frame=self.frame.iloc[index].reset_index(drop=True), fault=self.fault[index],
            downtime=self.downtime[index], interrupted=self.interrupted[index],
            capacity=self.capacity[index], expected_downtime=self.expected_downtime[index],
            logging_propensity=self.logging_propensity[index],
            fault_posterior=self.fault_posterior[index],
            fault_expected_downtime=self.fault_expected_downtime[index])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category per row from row-wise probabilities (vectorized)."""
    u = rng.random(len(probs))[:, None]
    return np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1)


def _prior_logits(frame: pd.DataFrame) -> np.ndarray:
    """Context -> fault prior: wear with age, hangs under memory pressure, blips at peak hours."""
    age_years = frame["node_age_days"].to_numpy(float) / 365.0
    mem = frame["mem_util"].to_numpy(float)
    hour = frame["hour_of_day"].to_numpy(float)
    peak = ((hour >= 9) & (hour <= 18)).astype(float)
    return np.column_stack([
        0.8 + 0.6 * peak,
        np.zeros(len(frame)),
        -0.6 + 0.45 * age_years,
        -1.4 + 0.5 * age_years,
        -0.8 + 2.5 * (mem - 0.5),
    ])


def _poisson_logpmf(k: np.ndarray, rate: np.ndarray) -> np.ndarray:
    return k * np.log(rate) - rate - gammaln(k + 1.0)


def fault_posterior(frame: pd.DataFrame) -> np.ndarray:
    """Exact P(fault | observed features) under the simulator's generative model, (n, F).

    This is what makes the truth a function of the features: the expected outcome of an action
    is the posterior-weighted mix of the per-fault outcomes.
    """
    log_p = log_softmax(_prior_logits(frame), axis=1)
    corrected = frame["hw_correctable_errors"].to_numpy(float)[:, None]
    r, m = CORRECTED_SHAPE, CORRECTED_MEAN[None, :]
    log_p += (gammaln(corrected + r) - gammaln(r) - gammaln(corrected + 1.0)
              + r * np.log(r / (r + m)) + corrected * np.log(m / (r + m)))
    uncorr = frame["hw_uncorrectable_errors"].to_numpy(float)[:, None]
    log_p += _poisson_logpmf(uncorr, UNCORRECTABLE_RATE[None, :])
    definitive = frame["hw_fault_definitive"].to_numpy(bool)[:, None]
    log_p += np.where(definitive, np.log(DEFINITIVE_PROB)[None, :],
                      np.log1p(-DEFINITIVE_PROB)[None, :])
    pattern = np.array([HEARTBEAT_PATTERNS.index(p) for p in frame["heartbeat_pattern"]])
    log_p += np.log(PATTERN_PROB[:, pattern].T)
    hb = frame["heartbeat_loss_count"].to_numpy(float)[:, None]
    log_p += _poisson_logpmf(hb, HEARTBEAT_RATE[pattern][:, None] * HEARTBEAT_FAULT_SCALE[None, :])
    recent = frame["recent_incidents_30d"].to_numpy(float)[:, None]
    log_p += _poisson_logpmf(recent, RECENT_RATE[None, :])
    cpu = np.clip(frame["cpu_util"].to_numpy(float), 1e-6, 1 - 1e-6)[:, None]
    a, b = CPU_BETA[:, 0][None, :], CPU_BETA[:, 1][None, :]
    log_p += ((a - 1) * np.log(cpu) + (b - 1) * np.log1p(-cpu)
              + gammaln(a + b) - gammaln(a) - gammaln(b))
    return np.exp(log_softmax(log_p, axis=1))


def _downtime_by_fault(frame: pd.DataFrame) -> np.ndarray:
    """(n, F, K) expected VM downtime of each action if the node had each fault.

    Load-dependent: every disruptive action gets slower with more VMs to restart or move.
    """
    vm = frame["vm_count"].to_numpy(float)[:, None]
    mem = frame["mem_util"].to_numpy(float)[:, None]
    hb = frame["heartbeat_loss_count"].to_numpy(float)[:, None]
    age_years = frame["node_age_days"].to_numpy(float)[:, None] / 365.0
    D = np.repeat(BASE_DOWNTIME[None, :, :], len(frame), axis=0)
    transient = np.zeros(len(FAULTS))
    transient[FAULTS.index("transient")] = 1.0
    D[:, :, 0] *= 1.0 + 0.15 * hb * transient[None, :]       # long silences clear slower
    D[:, :, 1] *= (0.6 + 0.8 * mem) * (0.7 + vm / 40.0)        # reboot a loaded, crowded node
    D[:, :, 2] *= 0.5 + vm / 30.0                              # live migrations scale with VMs
    D[:, :, 3] *= (0.8 + 0.1 * age_years) * (0.8 + vm / 100.0)  # reimage + restart the VMs
    D[:, :, 4] *= 0.7 + vm / 60.0                              # drain before repair
    return D


def simulate_events(n: int, *, seed: int = 0, legacy_share: float = 0.6,
                    n_clusters: int = 20, overlap: float = 0.15) -> SimulatedEvents:
    """Simulate `n` unhealthy-node episodes logged under the confounded legacy policy.

    `legacy_share` is the probability the logged action is the legacy rule's; the rest are
    symptom-dependent operator choices (which gives the data its overlap and its confounding).
    `overlap` is the share of operator choices made uniformly at random (every action stays
    possible for every node).
    """
    rng = np.random.default_rng(seed)
    K = len(ACTIONS)
    sku_idx = rng.choice(len(KNOWN_SKUS), size=n, p=[0.2, 0.3, 0.3, 0.2])
    sku = np.array(KNOWN_SKUS)[sku_idx]
    age_days = rng.gamma(2.0, 120.0, size=n) + (len(KNOWN_SKUS) - 1 - sku_idx) * 300.0
    mem_util = rng.beta(4, 3, size=n)
    vm_count = rng.integers(1, 41, size=n)
    hour = rng.integers(0, 24, size=n)
    context = pd.DataFrame({"node_age_days": age_days, "mem_util": mem_util, "hour_of_day": hour})
    fault = _choice_rows(rng, _softmax(_prior_logits(context)))

    # symptoms caused by the fault
    corrected = rng.poisson(CORRECTED_MEAN[fault] * rng.gamma(CORRECTED_SHAPE, 1.0 / CORRECTED_SHAPE,
                                                              size=n))
    uncorr = rng.poisson(UNCORRECTABLE_RATE[fault])
    definitive = rng.random(n) < DEFINITIVE_PROB[fault]
    pattern_idx = _choice_rows(rng, PATTERN_PROB[fault])
    pattern = np.array(HEARTBEAT_PATTERNS)[pattern_idx]
    hb_count = rng.poisson(HEARTBEAT_RATE[pattern_idx] * HEARTBEAT_FAULT_SCALE[fault])
    recent = rng.poisson(RECENT_RATE[fault])
    cpu_util = rng.beta(CPU_BETA[fault, 0], CPU_BETA[fault, 1])

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

    # potential outcomes: per-fault means, realized for the latent fault with mean-1 timing noise
    rows = np.arange(n)
    by_fault = _downtime_by_fault(frame)                       # (n, F, K)
    posterior = fault_posterior(frame)                         # (n, F)
    expected = np.einsum("nf,nfk->nk", posterior, by_fault)    # E[Y | x, a]
    fault_expected = by_fault[rows, fault]                     # E[Y | x, fault, a]
    s_node, s_action = TIMING_SIGMA
    log_noise = (rng.normal(-s_node ** 2 / 2, s_node, size=(n, 1))
                 + rng.normal(-s_action ** 2 / 2, s_action, size=(n, K)))
    downtime = fault_expected * np.exp(log_noise)
    interrupted = rng.random((n, 1)) < INTERRUPT_PROB[fault]
    capacity = BASE_CAPACITY_HOURS[None, :] * np.exp(rng.normal(0.0, 0.2, size=(n, K)))

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
    operator = (1.0 - overlap) * _softmax(op_logits) + overlap / K
    propensity = legacy_share * legacy_onehot + (1.0 - legacy_share) * operator
    taken = _choice_rows(rng, propensity)
    frame["action"] = np.array(ACTIONS)[taken]
    frame["vm_downtime_min"] = downtime[rows, taken]
    frame["vm_interrupted"] = interrupted[rows, taken]
    frame["capacity_out_hours"] = capacity[rows, taken]
    return SimulatedEvents(frame=frame, fault=np.array(FAULTS)[fault], downtime=downtime,
                           interrupted=interrupted, capacity=capacity, expected_downtime=expected,
                           logging_propensity=propensity, fault_posterior=posterior,
                           fault_expected_downtime=fault_expected)


# ----------------------------------------------------------------------------------------------
# planted cases for the refutation gate: each has a known right answer (pass or refuse)

GATE_CASES: dict[str, bool] = {"clean": True, "hidden_confounder": False, "zero_effect": True,
                               "outcome_leak": False}


@dataclass(frozen=True)
class GateCase:
    """A binary contrast with a known truth: features, treatment, outcome, a negative control."""

    name: str
    X: np.ndarray
    t: np.ndarray
    y: np.ndarray
    negative_control: np.ndarray
    true_effect: float
    should_pass: bool


def planted_gate_case(name: str, *, n: int = 2000, seed: int = 0) -> GateCase:
    """One of GATE_CASES on `n` rows.

    clean: observed confounding only, effect 4 (+ heterogeneity); hidden_confounder: a hidden U
    drives both the action and the outcome (and, as in real fleets, the pre-treatment negative
    control, e.g. last month's downtime); zero_effect: clean with no effect at all; outcome_leak:
    clean plus a feature that is the outcome measured with a little noise.
    """
    if name not in GATE_CASES:
        raise ValueError(f"unknown gate case {name!r}; one of {list(GATE_CASES)}")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    hidden = rng.normal(size=n) if name == "hidden_confounder" else np.zeros(n)
    logits = 0.8 * X[:, 0] - 0.5 * X[:, 1] + 1.5 * hidden
    t = (rng.random(n) < 1.0 / (1.0 + np.exp(-logits))).astype(int)
    effect = np.zeros(n) if name == "zero_effect" else 4.0 + X[:, 2]
    y = effect * t + 2.0 * X[:, 0] + X[:, 1] + 3.0 * hidden + rng.normal(scale=2.0, size=n)
    control = X[:, 0] + 1.5 * hidden + rng.normal(size=n)
    if name == "outcome_leak":
        X = np.column_stack([X, y + rng.normal(scale=0.1, size=n)])
    return GateCase(name, X, t, y, control, float(effect.mean()), GATE_CASES[name])
