"""Episodic memory: every incident's trajectory, stored in SQL and embedded in Chroma.

WHY: the diagnoser and actor get faster with experience when they can ask "have we seen this
before, what fixed it, how long did it take?". ``record`` writes one episode atomically in SQL,
then indexes it; ``recall`` returns the most similar past episodes with what worked and the time
to recover. See ``memory.index`` for the crash-safety ordering and ``repair``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from memory.index import VectorIndex
from memory.models import EpisodeRow

COLLECTION = "memory_episodes"
RESOLVED = {"resolved", "recovered", "mitigated", "success"}
EPISODE_NAMESPACE = uuid.UUID("7b7c4a4e-0a53-4c56-9d0f-3f2f6f0d9a11")


@dataclass
class Episode:
    """An incident's trajectory. ``actions`` items are dicts like
    ``{"action": "restart", "target": "cartservice", "succeeded": True}``; ``hypotheses`` items
    ``{"root_cause": "...", "confidence": 0.7}``."""

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


def _describe_action(a: dict[str, Any]) -> str:
    target = a.get("target")
    return f"{a.get('action', '?')}" + (f" {target}" if target else "")


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


class EpisodicMemory:
    """Episodes in SQL (source of truth) + Chroma (similarity index)."""

    def __init__(
        self,
        engine: Engine | sessionmaker[Session],
        *,
        chroma_client: Any,
        embedding: EmbeddingFunction[Documents] | None = None,
        collection: str = COLLECTION,
    ) -> None:
        self.sessions = engine if isinstance(engine, sessionmaker) else sessionmaker(engine, expire_on_commit=False)
        self.index = VectorIndex(chroma_client, collection, embedding)

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
            document=episode.symptom_text(),
            indexed=False,
            embedding_model=None,
        )
        with self.sessions.begin() as session:  # one transaction: the whole episode or nothing
            session.merge(row)
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
        """The ``k`` most similar past episodes (excluding the query's own incident)."""
        text = query.symptom_text() if isinstance(query, Episode) else query
        own = query.incident_id if isinstance(query, Episode) else None
        hits = self.index.query(text, n=k + 5)
        if not hits:
            return []
        with self.sessions() as session:
            rows = {r.id: r for r in session.scalars(select(EpisodeRow).where(EpisodeRow.id.in_([h.id for h in hits])))}
        out: list[Recall] = []
        for hit in hits:
            row = rows.get(hit.id)
            if row is None or row.incident_id == own or hit.similarity < min_similarity:
                continue  # a vector without its row (crash before commit was repaired away) is ignored
            out.append(
                Recall(
                    episode_id=row.id,
                    incident_id=row.incident_id,
                    similarity=hit.similarity,
                    title=row.title,
                    root_cause=row.root_cause,
                    outcome=row.outcome,
                    what_worked=[_describe_action(a) for a in row.actions if a.get("succeeded")],
                    what_failed=[_describe_action(a) for a in row.actions if a.get("succeeded") is False],
                    time_to_recover_s=row.time_to_recover_s,
                )
            )
            if len(out) >= k:
                break
        return out

    # ------------------------------------------------------------------ upkeep

    def upkeep(self, *, retention_days: float | None = None, now: datetime | None = None) -> dict[str, int]:
        """Re-embed after a model change, expire old episodes (if asked), repair the index."""
        report = {"reembedded": 0, "expired": 0}
        if self.index.stale:
            self.index.rebuild()
            with self.sessions.begin() as session:
                result = session.execute(update(EpisodeRow).values(indexed=False, embedding_model=None))
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
