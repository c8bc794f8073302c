"""Episodic memory: every incident's trajectory, stored in SQL and embedded in Chroma.

WHY: the diagnoser and actor get faster with experience when they can ask "have we seen this
before, what fixed it, how long did it take?". ``record`` writes one episode atomically in SQL,
then indexes it; ``recall`` returns the most similar past episodes with what worked and the time
to recover. See ``memory.index`` for the crash-safety ordering and ``repair``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from chromadb.api.types import Documents, EmbeddingFunction
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker

from memory.index import LexicalIndex, VectorIndex, rrf
from memory.models import EpisodeRow

COLLECTION = "memory_episodes"
RESOLVED = {"resolved", "recovered", "mitigated", "success"}
EPISODE_NAMESPACE = uuid.UUID("7b7c4a4e-0a53-4c56-9d0f-3f2f6f0d9a11")
RANKINGS = ("dense", "lexical", "hybrid")
RRF_K = 60
# BM25 counts twice the dense ranking: on templated symptoms exact fault tokens (service, metric,
# error template) beat meaning (chosen on bench seeds 11-13; the report uses seed 7); the dense list
# still carries paraphrased queries that share no rare token with any episode.
LEXICAL_WEIGHT = 2.0
# A lexical hit must hold this share of the query's idf mass: one common word ("usage") shared with
# a paraphrased query would otherwise outvote the dense ranking.
MIN_LEXICAL_COVERAGE = 0.25
# Places an episode that did not end resolved moves down in each ranking: it carries no confirmed
# root cause or fix, so among about equally similar episodes the resolved one is the useful answer,
# while a clearly more similar failed episode still comes first (what failed is worth knowing).
UNRESOLVED_DEMOTION = 2.0

# --- salient symptom text -----------------------------------------------------------------------
# A pod name is its workload plus generated hashes (``cartservice-579f59597d-wc2lz``): keep the
# workload, which is stable across incidents, drop the hashes, which never repeat.
_POD = re.compile(r"\b([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*?)-[0-9a-f]{6,10}-[0-9a-z]{5}\b")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])")
_WORDS = re.compile(r"[a-z0-9]+")
_COUNT = re.compile(r"x\d+")
_METRIC = re.compile(r"^(?P<name>.+?): baseline (?P<base>\S+), latest (?P<last>\S+), peak")
_HEAD = re.compile(r"^x\d+(?: \[[^\]]*\])? ")
_VARIANT = re.compile(r"^variant x\d+: ")
_SKIP = ("[context]", "[notation]", "## ", "ids:", "first:", "last:")
# Words every log line or alert carries: they say nothing about which fault this is.
_STOP = frozenset(
    "a an the of on in at to for from by is are was be and or with trace traceid id span spanid "
    "info debug severity message timestamp log logs name stream stdout time".split()
)


def _keep_word(w: str) -> bool:
    """Drop numbers and ids (hashes, product codes); keep words like p90, 5xx, travel2, ec2."""
    digits = sum(c.isdigit() for c in w)
    if _COUNT.fullmatch(w):
        return False
    if not digits:
        return len(w) > 1 and w not in _STOP
    return digits <= 2 and len(w) < 8 and not w.isdigit()


def _clean_line(line: str) -> str:
    line = _POD.sub(r"\1", line)
    line = _CAMEL.sub(" ", line).lower()
    return " ".join(w for w in _WORDS.findall(line) if _keep_word(w))


def salient_text(text: str, *, max_chars: int = 1000) -> str:
    """What identifies the fault, without what identifies the instance.

    WHY: the raw symptom text is dominated by ids, hashes, counts and timestamps that never
    repeat across incidents; they dilute both the embedding and lexical overlap. From an alert +
    compressed context (``memory.compressor`` layout) this keeps, in order: alert name/summary
    words, error/warn templates and their variants, anomalous metric names with their direction
    (``cpu usage rate increased``), routine templates; it drops the context header, id tables,
    verbatim first/last lines, pod hashes, numbers and hex ids. Idempotent on its own output.
    """
    out: list[str] = []
    seen: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(_SKIP):
            continue
        line = _VARIANT.sub("", _HEAD.sub("", line))
        m = _METRIC.match(line)
        if m:
            try:
                up = float(m["last"]) >= float(m["base"])
            except ValueError:
                up = True
            line = f"{m['name']} {'increased' if up else 'decreased'}"
        cleaned = _clean_line(line)
        if cleaned and cleaned not in seen:
            seen.add(cleaned)
            out.append(cleaned)
    return "\n".join(out)[:max_chars]


def lexical_tokens(text: str) -> list[str]:
    """Unigrams plus in-line bigrams of the salient text (bigrams tell ``cpu usage`` from ``memory usage``)."""
    tokens: list[str] = []
    for line in salient_text(text, max_chars=10_000).splitlines():
        words = line.split()
        tokens.extend(words)
        tokens.extend(a + "_" + b for a, b in zip(words, words[1:], strict=False))
    return tokens


@dataclass
class Episode:
    """An incident's trajectory. ``actions`` items are dicts like
    ``{"action": "restart", "target": "cartservice", "succeeded": True}``; ``hypotheses`` items
    ``{"root_cause": "...", "confidence": 0.7}``, optionally with ``component``, ``component_kind``,
    ``fault`` and ``evidence`` (the diagnoser's hypothesis contract), from which recall reads where
    the fault was."""

    incident_id: str
    title: str = ""
    signals: list[str] = field(default_factory=list)
    compressed_context: str = ""
    hypotheses: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    root_cause: str = ""
    outcome: str = "unknown"
    time_to_recover_s: float | None = None
    started_at: datetime | None = None
    id: str | None = None

    def episode_id(self) -> str:
        """Stable id derived from the incident, so recording the same incident twice is an update."""
        return self.id or str(uuid.uuid5(EPISODE_NAMESPACE, self.incident_id))

    def symptom_text(self, max_chars: int = 1500) -> str:
        """What the incident looked like (not how it ended): the text that is embedded and queried.

        MiniLM reads ~256 word pieces, so the most telling parts come first.
        """
        parts = [self.title, "signals: " + "; ".join(self.signals) if self.signals else "", self.compressed_context]
        return "\n".join(p for p in parts if p)[:max_chars]

    def salient_text(self) -> str:
        """``symptom_text`` reduced to what identifies the fault (see module ``salient_text``)."""
        parts = [self.title, *self.signals, self.compressed_context]
        return salient_text("\n".join(p for p in parts if p))


@dataclass
class Recall:
    """A similar past episode and what we learned from it."""

    episode_id: str
    incident_id: str
    similarity: float
    title: str
    root_cause: str
    outcome: str
    what_worked: list[str]
    what_failed: list[str]
    time_to_recover_s: float | None
    component: str = ""          # where the confirmed root cause was (service, node, ...), when known
    component_kind: str = ""


def _root_component(hypotheses: list[dict[str, Any]], root_cause: str) -> tuple[str, str]:
    """The component of the hypothesis that matched the confirmed root cause.

    WHY here and not a column: hypotheses are already stored as JSON with each item's component,
    kind and evidence, so older rows (no component) and newer ones read the same way, no migration.
    """
    for h in hypotheses or []:
        if isinstance(h, dict) and h.get("component") and (not root_cause or h.get("root_cause") == root_cause):
            return str(h["component"]), str(h.get("component_kind") or "")
    return "", ""


def _describe_action(a: dict[str, Any]) -> str:
    target = a.get("target")
    return f"{a.get('action', '?')}" + (f" {target}" if target else "")


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


class EpisodicMemory:
    """Episodes in SQL (source of truth) + Chroma (dense index) + in-memory BM25 (lexical index).

    ``ranking``: ``"hybrid"`` (default) fuses the dense and lexical rankings by reciprocal rank,
    ``"dense"`` / ``"lexical"`` use one of them. ``salient=False`` embeds the raw symptom text
    (the pre-2 behaviour, kept for comparison). ``prefer_resolved`` down-weights episodes that did
    not end resolved. ``Recall.similarity`` is always the dense cosine similarity, so
    ``min_similarity`` keeps its meaning whatever the ranking.
    """

    def __init__(
        self,
        engine: Engine | sessionmaker[Session],
        *,
        chroma_client: Any,
        embedding: EmbeddingFunction[Documents] | None = None,
        collection: str = COLLECTION,
        ranking: str = "hybrid",
        salient: bool = True,
        prefer_resolved: bool = True,
    ) -> None:
        if ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {RANKINGS}, not {ranking!r}")
        self.sessions = engine if isinstance(engine, sessionmaker) else sessionmaker(engine, expire_on_commit=False)
        self.index = VectorIndex(chroma_client, collection, embedding)
        self.ranking = ranking
        self.salient = salient
        self.prefer_resolved = prefer_resolved
        self.rrf_k, self.lexical_weight, self.min_coverage = RRF_K, LEXICAL_WEIGHT, MIN_LEXICAL_COVERAGE
        self._lexical: LexicalIndex | None = None
        self._lexical_key: tuple[Any, ...] | None = None
        self._vectors: dict[str, list[float] | None] = {}  # query text -> embedding (small LRU-ish cache)

    def _document(self, text: str) -> str:
        return salient_text(text) if self.salient else text

    # ------------------------------------------------------------------ writing

    def record(self, episode: Episode) -> str:
        """Store (or replace) an episode; returns its id. Safe to retry after any failure."""
        episode_id = episode.episode_id()
        row = EpisodeRow(
            id=episode_id,
            incident_id=episode.incident_id,
            title=episode.title[:500],
            signals=list(episode.signals),
            compressed_context=episode.compressed_context,
            hypotheses=list(episode.hypotheses),
            actions=list(episode.actions),
            root_cause=episode.root_cause[:500],
            outcome=episode.outcome,
            time_to_recover_s=episode.time_to_recover_s,
            started_at=episode.started_at,
            document=episode.salient_text() if self.salient else episode.symptom_text(),
            indexed=False,
            embedding_model=None,
        )
        with self.sessions.begin() as session:  # one transaction: the whole episode or nothing
            session.merge(row)
        self._lexical = None
        self._index([row])
        return episode_id

    def _index(self, rows: list[EpisodeRow]) -> None:
        self.index.upsert(
            [r.id for r in rows],
            [r.document for r in rows],
            [
                {
                    "incident_id": r.incident_id,
                    "root_cause": r.root_cause,
                    "outcome": r.outcome,
                    "ttr_s": r.time_to_recover_s,
                }
                for r in rows
            ],
        )
        with self.sessions.begin() as session:
            session.execute(
                update(EpisodeRow)
                .where(EpisodeRow.id.in_([r.id for r in rows]))
                .values(indexed=True, embedding_model=self.index.active_model)
            )

    def repair(self, *, batch: int = 64) -> dict[str, int]:
        """Index rows a crash left unindexed; drop vectors whose row is gone. Idempotent."""
        indexed = 0
        while True:
            with self.sessions() as session:
                rows = list(session.scalars(select(EpisodeRow).where(EpisodeRow.indexed.is_(False)).limit(batch)))
            if not rows:
                break
            self._index(rows)
            indexed += len(rows)
        with self.sessions() as session:
            known = set(session.scalars(select(EpisodeRow.id)))
        orphans = sorted(self.index.all_ids() - known)
        self.index.delete(orphans)
        return {"indexed": indexed, "orphans_removed": len(orphans)}

    # ------------------------------------------------------------------ reading

    def get(self, episode_id: str) -> EpisodeRow | None:
        with self.sessions() as session:
            return session.get(EpisodeRow, episode_id)

    def count(self) -> int:
        with self.sessions() as session:
            return len(list(session.scalars(select(EpisodeRow.id))))

    def recall(self, query: Episode | str, *, k: int = 5, min_similarity: float = -1.0) -> list[Recall]:
        """The ``k`` most similar past episodes (excluding the query's own incident), best first.

        Only the query's symptoms are used (never its root cause or outcome).
        """
        raw = query.symptom_text(max_chars=10_000) if isinstance(query, Episode) else query
        text = self._document(raw)
        own = query.incident_id if isinstance(query, Episode) else None
        depth = max(4 * k, 50)
        vector = self._embed(text)
        dense = [] if self.ranking == "lexical" else self.index.query(text, n=depth, embedding=vector)
        similarity = {h.id: h.similarity for h in dense}
        lexical = (
            []
            if self.ranking == "dense"
            else self._lexical_index().top(lexical_tokens(text), n=depth, min_coverage=self.min_coverage)
        )
        ids = list(dict.fromkeys([h.id for h in dense] + [doc_id for doc_id, _ in lexical]))
        if not ids:
            return []
        with self.sessions() as session:
            rows = {r.id: r for r in session.scalars(select(EpisodeRow).where(EpisodeRow.id.in_(ids)))}
        # A vector without its row (crash before commit, repaired away later) is ignored.
        rows = {i: r for i, r in rows.items() if r.incident_id != own}
        demote = {i: UNRESOLVED_DEMOTION for i, r in rows.items() if r.outcome not in RESOLVED} if self.prefer_resolved else {}
        fused = rrf(
            [[h.id for h in dense if h.id in rows], [d for d, _ in lexical if d in rows]],
            k=self.rrf_k, weights=[1.0, self.lexical_weight], demote=demote,
        )
        missing = [i for i in fused if i not in similarity]
        if missing and vector is not None:
            similarity.update(self.index.cosine(vector, missing))
        ranked = sorted(fused, key=lambda i: (-fused[i], -similarity.get(i, -1.0), i))
        out: list[Recall] = []
        for episode_id in ranked:
            row, sim = rows[episode_id], similarity.get(episode_id, 0.0)
            if sim < min_similarity:
                continue
            out.append(
                Recall(
                    episode_id=row.id,
                    incident_id=row.incident_id,
                    similarity=sim,
                    title=row.title,
                    root_cause=row.root_cause,
                    outcome=row.outcome,
                    what_worked=[_describe_action(a) for a in row.actions if a.get("succeeded")],
                    what_failed=[_describe_action(a) for a in row.actions if a.get("succeeded") is False],
                    time_to_recover_s=row.time_to_recover_s,
                    component=_root_component(row.hypotheses, row.root_cause)[0],
                    component_kind=_root_component(row.hypotheses, row.root_cause)[1],
                )
            )
            if len(out) >= k:
                break
        return out

    def _embed(self, text: str) -> list[float] | None:
        """Query embedding, cached per text (the same incident is often recalled more than once)."""
        if text not in self._vectors:
            if len(self._vectors) >= 256:
                self._vectors.pop(next(iter(self._vectors)))
            self._vectors[text] = self.index.embed(text)
        return self._vectors[text]

    def _lexical_index(self) -> LexicalIndex:
        """BM25 over every episode's stored document, rebuilt when the table changes.

        WHY rebuilt from SQL: the table is the source of truth and other processes write to it;
        a count + total document length fingerprint detects their writes for one cheap query.
        """
        with self.sessions() as session:
            key = tuple(session.execute(select(func.count(EpisodeRow.id), func.sum(func.length(EpisodeRow.document)))).one())
            if self._lexical is None or key != self._lexical_key:
                docs = session.execute(select(EpisodeRow.id, EpisodeRow.document)).all()
                self._lexical = LexicalIndex({i: lexical_tokens(d or "") for i, d in docs})
                self._lexical_key = key
        return self._lexical

    # ------------------------------------------------------------------ upkeep

    def _redocument(self) -> int:
        """Rows whose stored document is not what this version embeds (e.g. raw text recorded
        before salient documents) get the new document and are re-indexed by ``repair``."""
        changed = 0
        with self.sessions.begin() as session:
            for row in session.scalars(select(EpisodeRow)):
                doc = self._document(row.document or "")
                if self.salient and doc != row.document:
                    row.document, row.indexed, row.embedding_model = doc, False, None
                    changed += 1
        if changed:
            self._lexical = None
        return changed

    def upkeep(self, *, retention_days: float | None = None, now: datetime | None = None) -> dict[str, int]:
        """Re-embed after a model change, expire old episodes (if asked), repair the index."""
        report = {"reembedded": 0, "expired": 0, "redocumented": self._redocument()}
        if self.index.stale:
            self.index.rebuild()
            with self.sessions.begin() as session:
                result = cast(CursorResult[Any], session.execute(update(EpisodeRow).values(indexed=False, embedding_model=None)))
                report["reembedded"] = result.rowcount or 0
        if retention_days is not None:
            cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
            with self.sessions() as session:
                old = [
                    r.id
                    for r in session.scalars(select(EpisodeRow))
                    if (_aware(r.created_at) or cutoff) < cutoff
                ]
            if old:
                with self.sessions.begin() as session:  # SQL first: a crash leaves orphans repair removes
                    session.execute(delete(EpisodeRow).where(EpisodeRow.id.in_(old)))
                self.index.delete(old)
            report["expired"] = len(old)
        report.update(self.repair())
        return report
