"""EpisodicMemory against real Chroma (tmp PersistentClient) and SQLite/Postgres; crash safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
import sqlalchemy as sa

from memory.episodic import Episode, EpisodicMemory
from memory.models import EpisodeRow, MemoryBase, create_tables
from memory.vectors import HashingEmbedding, chroma_client

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def episodes() -> list[Episode]:
    return [
        Episode(
            incident_id="inc-disk",
            title="node-7 disk full, writes failing",
            signals=["DiskUsageHigh node-7 98%", "ERROR No space left on device"],
            root_cause="disk full",
            actions=[{"action": "rotate logs", "target": "node-7", "succeeded": True}],
            outcome="resolved",
            time_to_recover_s=420.0,
        ),
        Episode(
            incident_id="inc-cpu",
            title="frontend latency up, CPU saturated",
            signals=["HighCPU frontend 100%", "p90 latency 3s"],
            root_cause="cpu contention",
            actions=[
                {"action": "restart", "target": "frontend", "succeeded": False},
                {"action": "scale out", "target": "frontend", "succeeded": True},
            ],
            outcome="resolved",
            time_to_recover_s=900.0,
        ),
        Episode(
            incident_id="inc-db",
            title="checkout errors: database connection refused",
            signals=["ERROR connection refused 10.0.0.5:5432", "5xx rate 30%"],
            root_cause="database down",
            actions=[{"action": "failover db", "succeeded": True}],
            outcome="resolved",
            time_to_recover_s=1200.0,
        ),
    ]


def test_record_and_recall_with_minilm(engine, chroma, embedding):
    mem = EpisodicMemory(engine, chroma_client=chroma, embedding=embedding)
    for e in episodes():
        mem.record(e)
    query = Episode(incident_id="new", title="volume out of space on node-3", signals=["disk usage 99%"])
    got = mem.recall(query, k=2)
    assert got[0].root_cause == "disk full"
    assert got[0].what_worked == ["rotate logs node-7"] and got[0].time_to_recover_s == 420.0
    cpu = mem.recall("service slow, processor usage at 100 percent", k=1)[0]
    assert cpu.root_cause == "cpu contention"
    assert cpu.what_failed == ["restart frontend"] and cpu.what_worked == ["scale out frontend"]
    # The query's own incident is never returned.
    assert all(r.incident_id != "inc-db" for r in mem.recall(episodes()[2], k=3))


def test_record_is_idempotent_and_reopened_collection_uses_registered_function(engine, chroma, embedding, tmp_path):
    mem = EpisodicMemory(engine, chroma_client=chroma, embedding=embedding)
    e = episodes()[0]
    first = mem.record(e)
    e.time_to_recover_s = 300.0
    assert mem.record(e) == first
    assert mem.count() == 1 and mem.index.count() == 1
    assert mem.get(first).time_to_recover_s == 300.0
    # Another client on the same directory, no embedding function passed: the registry rebuilds it.
    other = chroma_client(path=tmp_path / "chroma")
    col = other.get_collection("memory_episodes")
    hits = col.query(query_texts=["disk is full"], n_results=1)
    assert hits["ids"][0] == [first]


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import sqlalchemy as sa
    from memory.episodic import Episode, EpisodicMemory
    from memory.index import VectorIndex
    from memory.vectors import HashingEmbedding, chroma_client
    from sqlalchemy.engine.base import Connection

    db, chroma_dir, where = sys.argv[1:4]
    mem = EpisodicMemory(sa.create_engine(f"sqlite:///{db}"), chroma_client=chroma_client(path=chroma_dir),
                         embedding=HashingEmbedding())
    if where == "before_commit":
        # Die after the INSERT was sent, right before the database COMMIT.
        Connection._commit_impl = lambda self: os._exit(17)
    elif where == "before_vector":
        VectorIndex.upsert = lambda self, *a, **k: os._exit(17)
    mem.record(Episode(incident_id="inc-crash", title="kafka broker down", root_cause="broker crash",
                       actions=[{"action": "restart broker", "succeeded": True}], outcome="resolved"))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before_commit", "before_vector"])
def test_crash_mid_write_leaves_no_half_episode(tmp_path, where):
    db, chroma_dir = tmp_path / "m.db", tmp_path / "chroma"
    engine = sa.create_engine(f"sqlite:///{db}")
    create_tables(engine)
    EpisodicMemory(engine, chroma_client=chroma_client(path=chroma_dir), embedding=HashingEmbedding())
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(db), str(chroma_dir), where], env=env, timeout=120)
    assert proc.returncode == 17  # the process really died mid-write
    mem = EpisodicMemory(engine, chroma_client=chroma_client(path=chroma_dir), embedding=HashingEmbedding())
    with engine.connect() as conn:
        rows = conn.execute(sa.select(EpisodeRow.id, EpisodeRow.indexed)).all()
    if where == "before_commit":
        assert rows == [] and mem.index.count() == 0  # nothing at all
        assert mem.recall("kafka broker down") == []
    else:
        assert len(rows) == 1 and rows[0].indexed is False  # whole row, flagged as not yet indexed
        assert mem.index.count() == 0
        assert mem.repair() == {"indexed": 1, "orphans_removed": 0}
        got = mem.recall("kafka broker is down", k=1)
        assert got and got[0].root_cause == "broker crash" and got[0].what_worked == ["restart broker"]
        assert mem.repair() == {"indexed": 0, "orphans_removed": 0}


def test_repair_removes_vectors_without_rows(engine, chroma):
    mem = EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding())
    mem.index.upsert(["ghost"], ["orphan vector"], [{"root_cause": "x"}])
    mem.record(episodes()[0])
    assert [r.episode_id for r in mem.recall("orphan vector", k=5)] != ["ghost"]
    assert mem.repair()["orphans_removed"] == 1
    assert mem.index.all_ids() == {episodes()[0].episode_id()}


@pytest.mark.integration
def test_postgres_round_trip(tmp_path):
    schema = f"memtest_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        MemoryBase.metadata.create_all(engine)
        mem = EpisodicMemory(engine, chroma_client=chroma_client(path=tmp_path / "c"), embedding=HashingEmbedding())
        for e in episodes():
            mem.record(e)
        mem.record(episodes()[1])  # idempotent upsert on Postgres too
        assert mem.count() == 3
        got = mem.recall("database connection refused on checkout", k=1)
        assert got[0].root_cause == "database down"
        from memory.semantic import SemanticMemory

        sem = SemanticMemory(engine, chroma_client=chroma_client(path=tmp_path / "c"), embedding=HashingEmbedding())
        for i in range(3):
            sem.learn(signature="db refused", root_cause="database down", mitigation="failover db",
                      success=True, episode_id=f"e{i}")  # fmt: skip
        assert sem.lookup("db refused", k=1).learned[0].status == "promoted"
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_recall_names_the_root_cause_component(engine, chroma):
    """Episodes keep each hypothesis's component; recall reads where the confirmed root cause was."""
    mem = EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding())
    mem.record(Episode(
        incident_id="inc-pay", title="checkout latency up, payment CPU saturated",
        signals=["HighLatency checkout", "container_cpu_usage_seconds_total payment increased"],
        hypotheses=[{"root_cause": "cpu_saturation", "fault": "cpu_saturation", "component": "payment",
                     "component_kind": "service", "confidence": 0.7, "evidence": ["cpu 0.2 -> 0.95"]},
                    {"root_cause": "network_delay", "component": "checkout", "confidence": 0.3}],
        root_cause="cpu_saturation", outcome="resolved",
    ))
    mem.record(Episode(incident_id="inc-old", title="checkout latency up", signals=["HighLatency checkout"],
                       hypotheses=[{"root_cause": "cpu_saturation", "confidence": 1.0}],
                       root_cause="cpu_saturation", outcome="resolved"))
    hits = {h.incident_id: h for h in mem.recall("checkout latency up, payment cpu increased", k=5)}
    assert (hits["inc-pay"].component, hits["inc-pay"].component_kind) == ("payment", "service")
    assert hits["inc-old"].component == ""  # episodes recorded before components existed still read
