"""The database-backed shared state, process-local: model registry store, policy cache, events, beat state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.storage.migrate import upgrade


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(url)
    return url


class _Model:
    """Stands in for a fitted model: the registry only pickles it."""

    def __init__(self, tag: str) -> None:
        self.tag = tag


def test_sql_registry_versions_gate_and_one_active(db_url):
    from causal.registry import RegistryError, RegistryStore
    from services.mitigation.registry import SqlRegistryStore, model_registry

    registry = model_registry(db_url)
    assert isinstance(registry.store, RegistryStore)
    assert registry.list() == [] and registry.active() is None
    registry.save(_Model("one"), metrics={"rows_valid": 3}, data_window={}, refutation={"passed": False})
    registry.save(_Model("two"), metrics={}, data_window={}, refutation={"passed": True})
    with pytest.raises(RegistryError, match="refutation gate"):
        registry.promote("v0001")
    registry.promote("v0002")
    # another process (a fresh store on the same database) sees the same versions and pointer
    other = model_registry(db_url)
    assert [(v.version, v.active) for v in other.list()] == [("v0001", False), ("v0002", True)]
    assert other.load_active().tag == "two" and other.get("v0001").meta["metrics"] == {"rows_valid": 3}
    other.promote("v0001", force=True)
    assert [v.active for v in registry.list()] == [True, False]
    assert SqlRegistryStore(db_url).active_fingerprint()[0] == "v0001"
    with pytest.raises(RegistryError):
        registry.load("v0099")
    with pytest.raises(RegistryError):
        registry.promote("v0099", force=True)


def test_policy_cache_follows_a_promotion_made_elsewhere(db_url, monkeypatch):
    import causal.policy
    from services.mitigation.registry import PolicyCache, model_registry

    loads = []

    class FakePolicy:
        def __init__(self, model, *, config, model_version):
            loads.append(model_version)
            self.model, self.model_version = model, model_version

    monkeypatch.setattr(causal.policy, "MitigationPolicy", FakePolicy)
    registry = model_registry(db_url)
    cache = PolicyCache()
    assert cache.get(db_url) is None
    for tag in ("one", "two"):
        registry.save(_Model(tag), metrics={}, data_window={}, refutation={"passed": True})
    registry.promote("v0001")
    assert cache.get(db_url).model.tag == "one" and cache.get(db_url).model.tag == "one"
    model_registry(db_url).promote("v0002")
    assert cache.get(db_url).model_version == "v0002"
    assert loads == ["v0001", "v0002"]  # unpickled once per version, not once per call


def test_events_round_trip_through_the_database(db_url, tmp_path):
    from causal.data import ValidationError, write_events
    from causal.synthetic import simulate_events
    from services.mitigation.events import (
        count_events,
        export_events,
        import_events,
        iter_event_rows,
        record_event,
    )

    frame = simulate_events(30, seed=2).frame
    first = frame.iloc[0].to_dict()
    record_event(db_url, row=first)
    record_event(db_url, row={**first, "vm_downtime_min": 999.0})  # the same episode again (a redelivery)
    assert count_events(db_url) == 1 and next(iter_event_rows(db_url))["vm_downtime_min"] != 999.0
    with pytest.raises(ValidationError, match="action"):
        record_event(db_url, row={**first, "event_id": "x", "action": "nuke"})
    path = tmp_path / "events.csv"
    write_events(frame, path)
    with path.open("a") as handle:
        handle.write("garbage,row\n")
    result = import_events(db_url, path=path)
    assert result["imported"] == 29 and result["duplicates"] == 1 and len(result["rejected"]) == 1
    assert count_events(db_url) == 30
    rows = list(iter_event_rows(db_url))
    assert [r["event_id"] for r in rows][:2] == [first["event_id"], frame.iloc[1]["event_id"]]
    assert export_events(db_url, path=tmp_path / "out.jsonl") == 30


def test_beat_state_survives_a_restart_in_the_database(db_url):
    from services.worker.beat import database_scheduler
    from services.worker.celery_app import app

    scheduler_cls = database_scheduler(db_url)
    first = scheduler_cls(app=app)
    assert set(first.schedule) >= {"causal-retrain-nightly", "redispatch-stranded-alerts"}
    ran_at = datetime.now(UTC) - timedelta(hours=5)
    entry = first.schedule["causal-retrain-nightly"]
    entry.last_run_at, entry.total_run_count = ran_at, 3
    first.sync()
    restarted = scheduler_cls(app=app)  # a new beat process, maybe in another container
    again = restarted.schedule["causal-retrain-nightly"]
    assert again.last_run_at == ran_at and again.total_run_count == 3
    due, next_in = again.is_due()
    assert not due and 18.9 * 3600 < next_in <= 19 * 3600  # the nightly countdown did not restart
    assert "beat_schedule_state" in restarted.info
