"""WorkingMemory on real Redis (db 3) and in-process: raw in, compressed out, incremental, expiry, roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory.tokens import count_tokens
from memory.working import InProcessStore, RedisStore, Role, WorkingMemory

LOG = (Path(__file__).resolve().parent.parent / "fixtures" / "memory" / "trainticket_08_43.log").read_text()


@pytest.fixture(params=["inprocess", pytest.param("redis", marks=pytest.mark.integration)])
def store(request):
    if request.param == "inprocess":
        yield InProcessStore(ttl_seconds=60)
    else:
        url, prefix = request.getfixturevalue("redis_url")
        yield RedisStore(url, ttl_seconds=60, prefix=prefix)


def test_raw_in_compressed_out_under_budget(store):
    wm = WorkingMemory(store, budget_tokens=800)
    lines = LOG.splitlines()
    wm.write_raw("inc-1", source="probe:logs", text="\n".join(lines[:300]))
    wm.write_metric("inc-1", source="probe:metrics", name="p90 latency", series=[1.0] * 20 + [9.0] * 20)
    first = wm.compress("inc-1")
    assert 0 < count_tokens(first) <= 800
    assert wm.read_compressed("inc-1") == first
    assert "p90 latency" in first
    # Incremental: the second call folds only the new lines (raw is consumed), yet the result
    # equals compressing everything at once.
    wm.write_raw("inc-1", source="probe:logs", text="\n".join(lines[300:]))
    second = wm.compress("inc-1")
    assert store.take("inc-1:raw") == []
    once = WorkingMemory(InProcessStore(), budget_tokens=800)
    once.write_raw("x", source="p", text="\n".join(lines[:300]))
    once.write_metric("x", source="p", name="p90 latency", series=[1.0] * 20 + [9.0] * 20)
    once.write_raw("x", source="p", text="\n".join(lines[300:]))
    assert second == once.compress("x")
    assert "611 lines" in second


def test_expire_forgets_the_incident(store):
    wm = WorkingMemory(store, budget_tokens=300)
    wm.write_raw("inc-2", source="probe", text="ERROR disk full on node-7")
    assert "node-7" in wm.compress("inc-2")
    wm.expire("inc-2")
    assert wm.read_compressed("inc-2") == ""
    assert wm.compress("inc-2").startswith("[context] 0 lines")


@pytest.mark.integration
def test_redis_keys_carry_the_ttl(redis_url):
    import redis

    url, prefix = redis_url
    wm = WorkingMemory(RedisStore(url, ttl_seconds=90, prefix=prefix), budget_tokens=300)
    wm.write_raw("inc-3", source="probe", text="WARN slow disk on node-1")
    wm.compress("inc-3")
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(prefix + "inc-3:*"))
    assert {k.decode().rsplit(":", 1)[1] for k in keys} == {"state", "compressed"}
    assert all(0 < client.ttl(k) <= 90 for k in keys)


def test_access_rules():
    wm = WorkingMemory(InProcessStore(), budget_tokens=300)
    probe, compressor, diagnoser = wm.as_role(Role.PROBE), wm.as_role("compressor"), wm.as_role(Role.DIAGNOSER)
    probe.write_raw("inc-4", source="probe", text="ERROR connection refused to 10.0.0.5:5432")
    with pytest.raises(PermissionError):
        probe.read_compressed("inc-4")
    with pytest.raises(PermissionError):
        diagnoser.write_raw("inc-4", source="x", text="y")
    with pytest.raises(PermissionError):
        diagnoser.compress("inc-4")
    compressor.compress("inc-4")
    assert "10.0.0.5:5432" in diagnoser.read_compressed("inc-4")


def test_inprocess_ttl_expires():
    store = InProcessStore(ttl_seconds=0.05)
    wm = WorkingMemory(store, budget_tokens=100)
    wm.write_raw("inc-5", source="p", text="ERROR x")
    wm.compress("inc-5")
    import time

    time.sleep(0.1)
    assert wm.read_compressed("inc-5") == ""
