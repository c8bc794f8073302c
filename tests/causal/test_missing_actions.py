"""A log without some actions trains on the rest, says so, never recommends them (issue 12, part 1)."""

from __future__ import annotations

import numpy as np
import pytest

from causal.model import MitigationEffectModel
from causal.policy import MitigationPolicy
from causal.train import train
from tests.causal.conftest import SMALL


@pytest.fixture(scope="module")
def partial(history):
    frame = history.frame[~history.frame["action"].isin(["reimage", "repair"])].reset_index(drop=True)
    return frame


def test_model_trains_on_present_actions_and_never_recommends_the_rest(partial, fresh):
    model = MitigationEffectModel(SMALL).fit(partial)
    assert model.untrained_actions == ["reimage", "repair"]
    assert model.trained_actions == ["wait", "reboot", "redeploy"]
    table = model.effects(fresh.frame.head(50))
    assert np.isnan(table.effect[:, 3:]).all()
    batch = MitigationPolicy(model).recommend_batch(fresh.frame.drop(columns=["action"]).head(300))
    assert {r.action for r in batch.recommendations} <= {"wait", "reboot", "redeploy"}
    assert {r.model_action for r in batch.recommendations} <= {"wait", "reboot", "redeploy"}


def test_train_says_which_actions_it_left_out(partial):
    result = train(partial.head(1500), registry=None, model_config=SMALL, run_refutation=False,
                   holdout_fraction=0.0)
    assert result.metrics["untrained_actions"] == ["reimage", "repair"]
    assert "never recommends" in result.metrics["warnings"][0]


def test_baseline_without_events_is_refused(history):
    frame = history.frame[history.frame["action"] != "reboot"]
    with pytest.raises(ValueError, match="baseline action 'reboot'"):
        MitigationEffectModel(SMALL).fit(frame)
