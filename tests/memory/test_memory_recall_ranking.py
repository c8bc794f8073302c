"""Episodic recall ranking: salient symptom text, BM25, reciprocal-rank fusion, outcome preference.

A tiny synthetic set shaped like what the observer stores (alert + compressed context with pod
hashes, trace ids and numbers that never repeat); uses the lexical HashingEmbedding so it is fast.
"""

from __future__ import annotations

import random

import pytest

from memory.episodic import Episode, EpisodicMemory, lexical_tokens, salient_text
from memory.index import LexicalIndex, rrf
from memory.models import EpisodeRow
from memory.vectors import HashingEmbedding

FAULTS = {
    "cartservice:network_delay": ("PodLatencyP90High", "PodServerLatencyP90(s)", "WARN request to {svc} failed: "
                                  "context deadline exceeded"),
    "paymentservice:exception": ("ErrorLogRateHigh", "PodSuccessRate(%)", "ERROR Start charge card failed: "
                                 "java.lang.NullPointerException"),
    "currencyservice:cpu_contention": ("PodCpuUsageHigh", "CpuUsageRate(%)", "WARN GC pause exceeded target"),
}  # fmt: skip


def observed(incident_id: str, label: str, rng: random.Random, *, outcome: str = "resolved") -> Episode:
    """An episode as the platform records it; the text never contains the label."""
    svc = label.split(":")[0]
    alert, metric, line = FAULTS[label]
    pod = f"{svc}-{rng.getrandbits(36):09x}-{rng.getrandbits(20):05x}"
    trace = f"{rng.getrandbits(128):032x}"
    base = rng.uniform(1, 20)
    context = "\n".join([
        f"[context] {rng.randint(40, 400)} lines, 3 templates, 1 error/warn templates, 1 anomalous metrics",
        "## errors and warnings",
        f"x{rng.randint(2, 50)} [10:{rng.randint(10, 59)}:01Z] TraceID: {trace} {line.format(svc=svc)}",
        f"  ids: {trace} {rng.getrandbits(64):016x}",
        "## anomalous metrics",
        f"{pod} {metric}: baseline {base:.4g}, latest {base * 5:.4g}, peak {base * 6:.4g} at {rng.randint(20, 29)}",
        "## routine templates",
        f"x{rng.randint(10, 99)} INFO TraceID: <*> SpanID: <*> Request complete in <*> ms",
    ])  # fmt: skip
    return Episode(
        incident_id=incident_id, title=f"{alert} on {svc}", signals=[alert, f"{metric} of {pod} is {rng.randint(1, 999)}"],
        compressed_context=context, root_cause=label if outcome == "resolved" else "", outcome=outcome,
        actions=[{"action": "restart", "target": pod, "succeeded": outcome == "resolved"}],
        time_to_recover_s=float(rng.randint(60, 900)),
    )  # fmt: skip


def test_salient_text_keeps_fault_words_and_drops_instance_ids():
    rng = random.Random(1)
    e = observed("a", "cartservice:network_delay", rng)
    text = e.salient_text()
    assert "cartservice" in text and "pod server latency p90 increased" in text
    assert "deadline exceeded" in text and "request complete" in text
    for volatile in ("ids", "lines", "templates", "baseline", "latest", "traceid", "x2"):
        assert volatile not in text.split()
    assert not any(ch.isdigit() for w in text.split() for ch in w if w not in {"p90"})
    assert salient_text(text) == text  # idempotent: a stored document re-processed is unchanged
    # Two incidents of the same fault share their whole salient text despite fresh ids and numbers.
    assert observed("b", "cartservice:network_delay", rng).salient_text() == text


def test_bm25_and_rrf_on_a_toy_corpus():
    index = LexicalIndex({"a": ["cpu", "usage", "cartservice"], "b": ["latency", "cartservice"], "c": ["disk"]})
    ranked = [doc for doc, _ in index.top(["cpu", "cartservice"], n=5)]
    assert ranked == ["a", "b"]  # 'c' shares nothing; 'a' matches the rare 'cpu' too
    fused = rrf([["a", "b", "c"], ["b", "c"]], k=60)
    assert max(fused, key=fused.get) == "b" and fused["a"] < fused["b"]
    assert "cpu_usage" in lexical_tokens("CPU usage rate")  # bigrams separate cpu/memory usage


@pytest.mark.parametrize("ranking", ["dense", "lexical", "hybrid"])
def test_leave_one_out_finds_same_root_cause(engine, chroma, ranking):
    rng = random.Random(7)
    mem = EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding(), ranking=ranking)
    stored = [observed(f"{label}-{i}", label, rng) for label in FAULTS for i in range(3)]
    for e in stored:
        mem.record(e)
    for e in stored:
        got = mem.recall(e, k=2)
        assert [r.root_cause for r in got] == [e.root_cause] * 2, (ranking, e.incident_id)
        assert all(r.incident_id != e.incident_id for r in got)
        assert all(-1.0 <= r.similarity <= 1.0001 for r in got)
    # A plain-text query as services/episodes builds it (alert name, summary, context).
    fresh = observed("new", "paymentservice:exception", rng)
    query = "\n".join([*fresh.signals, fresh.compressed_context])
    assert mem.recall(query, k=1)[0].root_cause == "paymentservice:exception"


def test_hybrid_prefers_resolved_episode_among_equals(engine, chroma):
    rng = random.Random(3)
    mem = EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding())
    failed = observed("failed", "cartservice:network_delay", rng, outcome="failed")
    resolved = observed("resolved", "cartservice:network_delay", rng)
    other = observed("other", "currencyservice:cpu_contention", rng)
    for e in (failed, other, resolved):  # the unresolved one is older and sorts first by id
        mem.record(e)
    query = observed("query", "cartservice:network_delay", rng)
    assert [r.incident_id for r in mem.recall(query, k=2)] == ["resolved", "failed"]
    mem.prefer_resolved = False  # identical symptoms: only the outcome separated them
    got = mem.recall(query, k=2)
    assert {r.incident_id for r in got} == {"resolved", "failed"}
    assert got[0].similarity == pytest.approx(got[1].similarity)


def test_lexical_index_sees_other_writers_and_upkeep_redocuments_raw_rows(engine, chroma):
    rng = random.Random(5)
    reader = EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding(), ranking="lexical")
    assert reader.recall("anything", k=1) == []
    # An older writer stored the raw symptom text (the pre-salient behaviour).
    writer = EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding(), salient=False)
    e = observed("old", "paymentservice:exception", rng)
    writer.record(e)
    assert writer.get(e.episode_id()).document == e.symptom_text()
    query = observed("q", "paymentservice:exception", rng)
    hit = reader.recall(query, k=1)[0]  # the reader's BM25 picked up the other process's row
    assert hit.incident_id == "old" and hit.similarity > 0.0  # cosine computed for a lexical-only hit
    report = reader.upkeep()
    assert report["redocumented"] == 1 and report["indexed"] == 1
    row: EpisodeRow = reader.get(e.episode_id())
    assert row.document == salient_text(e.symptom_text()) and row.indexed
    assert reader.upkeep()["redocumented"] == 0
    with pytest.raises(ValueError):
        EpisodicMemory(engine, chroma_client=chroma, embedding=HashingEmbedding(), ranking="bm42")
