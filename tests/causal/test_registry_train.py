import json

import numpy as np
import pytest

from causal.data import write_events
from causal.evaluation import dr_policy_value
from causal.legacy import legacy_rule
from causal.policy import MitigationPolicy
from causal.refute import RefuteConfig
from causal.registry import (
    DirectoryStore,
    ModelRegistry,
    RegistryError,
    RegistryStore,
    StoredVersion,
    version_name,
)
from causal.train import train

from .conftest import SMALL


def test_registry_versions_gate_and_active(tmp_path, fitted, fresh):
    reg = ModelRegistry(tmp_path / "models")
    assert isinstance(reg.store, DirectoryStore) and isinstance(reg.store, RegistryStore)
    assert reg.list() == [] and reg.active() is None
    v1 = reg.save(fitted, metrics={"x": 1}, data_window={"rows": 3000},
                  refutation={"passed": False, "summary": "failed: placebo"})
    v2 = reg.save(fitted, metrics={"x": 2}, data_window={"rows": 3000}, refutation={"passed": True})
    assert [v.version for v in reg.list()] == ["v0001", "v0002"]
    with pytest.raises(RegistryError, match="refutation gate"):
        reg.promote(v1.version)
    reg.promote(v2.version)
    assert reg.active().version == "v0002" and reg.get("v0002").active
    reg.promote(v1.version, force=True)
    assert reg.active().version == "v0001"
    assert json.loads((tmp_path / "models" / "ACTIVE").read_text())["forced"] is True
    loaded = reg.load_active()
    nodes = fresh.frame.head(50)
    assert np.allclose(loaded.effects(nodes).effect, fitted.effects(nodes).effect)
    with pytest.raises(RegistryError):
        reg.get("v0099")


class _MemoryStore:
    """The smallest RegistryStore: the registry's rules must not depend on where the bytes live."""

    def __init__(self):
        self.blobs, self.metas, self.pointer = {}, {}, None

    def put(self, blob, *, meta):
        name = version_name(len(self.blobs) + 1)
        self.blobs[name], self.metas[name] = blob, meta
        return StoredVersion(name, meta)

    def get(self, version):
        if version not in self.blobs:
            raise RegistryError(version)
        return self.blobs[version]

    def list(self):
        return [StoredVersion(v, m, active=v == self.pointer) for v, m in self.metas.items()]

    def set_active(self, version, *, info):
        self.pointer = version

    def active_version(self):
        return self.pointer


def test_registry_rules_hold_on_any_store(fitted, fresh):
    store = _MemoryStore()
    reg = ModelRegistry(store)
    v1 = reg.save(fitted, metrics={}, data_window={}, refutation={"passed": False})
    with pytest.raises(RegistryError, match="refutation gate"):
        reg.promote(v1.version)
    assert store.pointer is None
    reg.promote(v1.version, force=True)
    assert reg.active_version() == "v0001" and [v.active for v in reg.list()] == [True]
    nodes = fresh.frame.head(20)
    assert np.allclose(reg.load_active().effects(nodes).effect, fitted.effects(nodes).effect)


def test_doubly_robust_value_close_to_truth(history):
    frame = history.frame
    legacy = legacy_rule(frame)
    est = dr_policy_value(frame, legacy, seed=0)
    truth = history.policy_outcomes(legacy)["downtime"]
    assert abs(est.dr - truth) < max(3 * est.dr_se, 0.1 * truth)


@pytest.mark.slow
def test_train_end_to_end_with_refutation_gate(tmp_path, history):
    path = tmp_path / "events.csv"
    write_events(history.frame.head(2000), path)
    with path.open("a") as handle:
        handle.write("garbage,row\n")
    stages = []
    result = train(path, registry=tmp_path / "reg", model_config=SMALL,
                   refute_config=RefuteConfig(contrasts=("redeploy",), sample_size=800,
                                              num_simulations=1, n_estimators=12),
                   progress=lambda stage, f: stages.append((stage, f)))
    assert result.rejected_rows == [{"line": 2002, "reason": "expected 20 fields, got 2"}]
    assert {s for s, _ in stages} == {"load", "evaluate", "fit", "refute", "save"}
    checks = result.refutation["checks"]
    assert {c["refuter"] for c in checks} == {"placebo_treatment", "random_common_cause", "data_subset",
                                              "dummy_outcome", "unobserved_confounder_evalue",
                                              "outcome_leakage"}
    placebo = next(c for c in checks if c["refuter"] == "placebo_treatment")
    assert abs(placebo["new_effect"]) < abs(placebo["estimate"])
    assert result.promoted == result.refutation["passed"]
    reg = ModelRegistry(tmp_path / "reg")
    meta = reg.get(result.version.version).meta
    assert meta["data_window"]["rows"] == 2000 and "holdout" in meta["metrics"]
    if result.promoted:
        model = reg.load_active()
        rec = MitigationPolicy(model).recommend_batch(history.frame.tail(5))
        assert len(rec.recommendations) == 5
