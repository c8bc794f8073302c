"""SemanticMemory: promotion/demotion with episode links, runbooks, upkeep (consolidate, expire, re-embed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from memory.episodic import Episode, EpisodicMemory
from memory.models import SemanticEntryRow
from memory.semantic import SemanticMemory
from memory.upkeep import run_upkeep
from memory.vectors import HashingEmbedding, collection_embedding_name

RUNBOOK = """# Disk pressure

## Symptoms
Node reports DiskPressure, writes fail with "No space left on device".

## Mitigation
Rotate and compress logs under /var/log, then clear the container image cache.

# Certificate expiry

## Mitigation
Renew the TLS certificate with cert-manager and restart the ingress.
"""


def test_promotion_demotion_and_episode_links(engine, chroma, embedding):
    sem = SemanticMemory(engine, chroma_client=chroma, embedding=embedding)
    sig = "checkout 5xx, ERROR connection refused to postgres 10.0.0.5:5432"
    ids = {sem.learn(signature=sig, root_cause="database down", mitigation="failover db", success=True,
                     episode_id=f"ep-{i}") for i in range(2)}  # fmt: skip
    assert len(ids) == 1
    entry_id = ids.pop()
    assert sem.entry(entry_id).status == "candidate"
    # Replaying the same episode does not count twice.
    sem.learn(signature=sig, root_cause="database down", mitigation="failover db", success=True, episode_id="ep-1")
    assert sem.entry(entry_id).success_count == 2
    # A near-identical signature (other ids) folds into the same entry and promotes it.
    sig2 = "checkout 5xx, ERROR connection refused to postgres 10.0.0.9:5432"
    assert sem.learn(signature=sig2, root_cause="database down", mitigation="failover db", success=True,
                     episode_id="ep-2") == entry_id  # fmt: skip
    row = sem.entry(entry_id)
    assert row.status == "promoted" and {s.episode_id for s in row.supports} == {"ep-0", "ep-1", "ep-2"}
    top = sem.lookup("payments failing: connection refused by postgres", k=3).learned[0]
    assert top.entry_id == entry_id and top.mitigation == "failover db" and len(top.episode_ids) == 3
    for i in range(2):
        sem.learn(signature=sig, root_cause="database down", mitigation="failover db", success=False,
                  episode_id=f"ep-f{i}")  # fmt: skip
    assert sem.entry(entry_id).status == "demoted"
    assert all(k.entry_id != entry_id for k in sem.lookup(sig, k=3).learned)
    assert sem.lookup(sig, k=3, include_demoted=True).learned[0].entry_id == entry_id


def test_learn_from_episode_and_runbooks_beside_learned(engine, chroma, embedding):
    episodic = EpisodicMemory(engine, chroma_client=chroma, embedding=embedding)
    sem = SemanticMemory(engine, chroma_client=chroma, embedding=embedding)
    ep = Episode(incident_id="inc-9", title="node-4 disk full", signals=["DiskPressure node-4"],
                 root_cause="disk full", outcome="resolved",
                 actions=[{"action": "rotate logs", "succeeded": True}])  # fmt: skip
    episode_id = episodic.record(ep)
    entry_id = sem.learn_from_episode(ep, episode_id=episode_id)
    assert [s.episode_id for s in sem.entry(entry_id).supports] == [episode_id]
    assert sem.index_runbook("disk.md", RUNBOOK) == 5
    assert sem.index_runbook("disk.md", RUNBOOK) == 5  # unchanged: no re-index
    found = sem.lookup("DiskPressure: no space left on device", k=2)
    assert found.learned[0].root_cause == "disk full"
    assert found.runbooks[0].runbook == "disk.md" and "space" in found.runbooks[0].text.lower()
    certs = sem.lookup("TLS certificate expired on ingress", k=1).runbooks[0]
    assert "cert-manager" in certs.text


def test_upkeep_consolidates_expires_and_reembeds(engine, chroma, embedding, tmp_path):
    sessions = sessionmaker(engine)
    lexical = SemanticMemory(engine, chroma_client=chroma, embedding=HashingEmbedding(), merge_similarity=2.0)
    a = lexical.learn(signature="kafka broker 3 down, consumer lag", root_cause="broker crash",
                      mitigation="restart broker", success=True, episode_id="e1")  # fmt: skip
    b = lexical.learn(signature="kafka broker 3 is down and consumer lag grows", root_cause="broker crash",
                      mitigation="restart broker", success=True, episode_id="e2")  # fmt: skip
    stale = lexical.learn(signature="odd one-off glitch", root_cause="unknown", mitigation="none", success=True,
                          episode_id="e3")  # fmt: skip
    lexical.index_runbook("kafka.md", "# Kafka\n\n## Broker down\nRestart the broker pod.")
    assert a != b
    with sessions.begin() as s:
        s.execute(update(SemanticEntryRow).where(SemanticEntryRow.id == stale)
                  .values(last_seen_at=datetime.now(UTC) - timedelta(days=200)))  # fmt: skip
    EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding()).record(
        Episode(incident_id="inc-k", title="kafka broker down", root_cause="broker crash", outcome="resolved")
    )
    # The embedding model changes (lexical -> MiniLM): upkeep re-embeds every collection.
    sem = SemanticMemory(engine, chroma_client=chroma, embedding=embedding, merge_similarity=0.8)
    assert sem.entries.stale and sem.runbooks.stale
    report = run_upkeep(engine, chroma_client=chroma, embedding=embedding, merge_similarity=0.8)
    assert report["episodic"]["reembedded"] == 1 and report["episodic"]["indexed"] == 1
    assert report["semantic"]["reembedded"] == {"entries": 3, "runbooks": 1}
    assert report["semantic"]["merged"] == 1 and report["semantic"]["expired"] == 1
    sem = SemanticMemory(engine, chroma_client=chroma, embedding=embedding)
    entries = sem.all_entries()
    assert len(entries) == 1 and entries[0].success_count == 2
    assert {s.episode_id for s in entries[0].supports} == {"e1", "e2"}
    assert collection_embedding_name(sem.entries.collection) == embedding.name()
    assert sem.lookup("kafka consumer lag", k=1).runbooks[0].runbook == "kafka.md"
    assert run_upkeep(engine, chroma_client=chroma, embedding=embedding, merge_similarity=0.8)["semantic"]["merged"] == 0
