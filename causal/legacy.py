"""The legacy mitigation rule: the runbook the fleet used before the causal model.

It is the fallback of the learned policy (used whenever the model is not sure) and the policy
the benchmark compares against. It only looks at the obvious signals: hard hardware evidence
goes to repair, a node with many recent incidents is reimaged, everything else is rebooted
(reboot is the "default action" and the baseline the effects are measured against).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

LegacyRule = Callable[[pd.DataFrame], np.ndarray]


def legacy_rule(frame: pd.DataFrame) -> np.ndarray:
    """Vectorized legacy runbook: one action name per row."""
    definitive = frame["hw_fault_definitive"].to_numpy(bool)
    uncorrectable = frame["hw_uncorrectable_errors"].to_numpy(float) >= 2
    repeat = frame["recent_incidents_30d"].to_numpy(float) >= 4
    actions = np.full(len(frame), "reboot", dtype=object)
    actions[repeat] = "reimage"
    actions[definitive | uncorrectable] = "repair"
    return actions
