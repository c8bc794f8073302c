"""Semantic memory: knowledge distilled from episodes, plus operator runbooks.

WHY: an episode says what happened once; semantic memory says what tends to be true. An entry
maps a fault signature to a root cause and a mitigation and keeps a track record. It is promoted
(trusted by the actor) after repeated consistent successes, demoted when it keeps failing, and
every count links back to the episodes behind it. Runbooks written by operators are indexed by
section and retrieved beside the learned entries, so on day one (no history) there is still help.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from chromadb.api.types import Documents, EmbeddingFunction
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker

from memory.episodic import RESOLVED, Episode
from memory.index import VectorIndex
from memory.models import RunbookRow, SemanticEntryRow, SemanticSupportRow, utcnow

ENTRIES = "memory_semantic"
RUNBOOKS = "memory_runbooks"
_VOLATILE = re.compile(r"[0-9a-f]*[0-9][0-9a-z_.:-]*")
_HEADING = re.compile(r"^(#{1,3})\s+(.*)$", re.MULTILINE)


def normalise_signature(signature: str) -> str:
    """Lower-case, ids and numbers masked, whitespace collapsed: one key for one fault shape."""
    return " ".join(_VOLATILE.sub("#", signature.lower()).split())


def signature_key(signature: str) -> str:
    return hashlib.sha256(normalise_signature(signature).encode()).hexdigest()


@dataclass
class Knowledge:
    """A learned entry or a runbook section returned by ``lookup``."""

    kind: str  # "learned" | "runbook"
    similarity: float
    text: str
    root_cause: str = ""
    mitigation: str = ""
    status: str = ""
    success_count: int = 0
    failure_count: int = 0
    episode_ids: list[str] = field(default_factory=list)
    runbook: str = ""
    entry_id: str = ""


@dataclass
class Lookup:
    learned: list[Knowledge]
    runbooks: list[Knowledge]


@dataclass
class UpkeepReport:
    merged: int = 0
    expired: int = 0
    status_changes: int = 0
    reembedded: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def chunk_runbook(text: str, *, max_chars: int = 1200) -> list[tuple[str, str]]:
    """(section title, section text) pairs split on Markdown headings, long sections cut."""
    heads = list(_HEADING.finditer(text))
    sections: list[tuple[str, str]] = []
    if not heads or heads[0].start() > 0:
        pre = text[: heads[0].start()] if heads else text
        if pre.strip():
            sections.append(("", pre.strip()))
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[h.start() : end].strip()
        if body:
            sections.append((h.group(2).strip(), body))
    out = []
    for title, body in sections:
        for start in range(0, len(body), max_chars):
            out.append((title, body[start : start + max_chars]))
    return out


class SemanticMemory:
    """Learned fault knowledge and runbooks (SQL + two Chroma collections)."""

    def __init__(
        self,
        engine: Engine | sessionmaker[Session],
        *,
        chroma_client: Any,
        embedding: EmbeddingFunction[Documents] | None = None,
        promote_after: int = 3,
        promote_rate: float = 0.75,
        demote_after_failures: int = 2,
        merge_similarity: float = 0.92,
    ) -> None:
        self.sessions = engine if isinstance(engine, sessionmaker) else sessionmaker(engine, expire_on_commit=False)
        self.entries = VectorIndex(chroma_client, ENTRIES, embedding)
        self.runbooks = VectorIndex(chroma_client, RUNBOOKS, embedding)
        self.promote_after = promote_after
        self.promote_rate = promote_rate
        self.demote_after_failures = demote_after_failures
        self.merge_similarity = merge_similarity

    # ------------------------------------------------------------------ learning

    def _status(self, row: SemanticEntryRow) -> str:
        total = row.success_count + row.failure_count
        rate = row.success_count / total if total else 0.0
        if row.consecutive_failures >= self.demote_after_failures or (total >= 3 and rate < 0.5):
            return "demoted"
        if row.success_count >= self.promote_after and rate >= self.promote_rate:
            return "promoted"
        return "promoted" if row.status == "promoted" else "candidate"

    def learn(self, *, signature: str, root_cause: str, mitigation: str, success: bool, episode_id: str) -> str:
        """Fold one outcome into the matching entry (created if new); returns the entry id.

        Idempotent per (entry, episode): replaying an episode does not count twice.
        """
        key = signature_key(signature)
        entry_id = self._match(signature, key, root_cause, mitigation)
        with self.sessions.begin() as session:
            row = session.get(SemanticEntryRow, entry_id) if entry_id else None
            if row is None:
                entry_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|{root_cause}|{mitigation}"))
                row = session.get(SemanticEntryRow, entry_id)
            if row is None:
                row = SemanticEntryRow(
                    id=entry_id, signature=signature, signature_key=key, root_cause=root_cause, mitigation=mitigation,
                    success_count=0, failure_count=0, consecutive_failures=0, status="candidate",
                )  # fmt: skip
                session.add(row)
                session.flush()
            seen = session.scalar(
                select(SemanticSupportRow).where(
                    SemanticSupportRow.entry_id == row.id, SemanticSupportRow.episode_id == episode_id
                )
            )
            if seen is None:
                session.add(SemanticSupportRow(entry_id=row.id, episode_id=episode_id, success=success))
                if success:
                    row.success_count += 1
                    row.consecutive_failures = 0
                else:
                    row.failure_count += 1
                    row.consecutive_failures += 1
                row.status = self._status(row)
            row.last_seen_at = row.updated_at = utcnow()
            row.indexed = False
            entry_id = row.id
        self._index_entries([entry_id])
        return entry_id

    def learn_from_episode(self, episode: Episode, *, episode_id: str | None = None) -> str | None:
        """Distil an episode: signature = title + signals, mitigation = the actions that worked
        (or the ones tried, when it failed). Returns the entry id, or None without a root cause."""
        if not episode.root_cause:
            return None
        worked = [a for a in episode.actions if a.get("succeeded")]
        tried = worked or episode.actions
        mitigation = ", ".join(f"{a.get('action', '?')}" for a in tried) or "none"
        signature = " | ".join([episode.title, *episode.signals]).strip(" |")
        return self.learn(
            signature=signature or episode.root_cause,
            root_cause=episode.root_cause,
            mitigation=mitigation,
            success=episode.outcome in RESOLVED,
            episode_id=episode_id or episode.episode_id(),
        )

    def _match(self, signature: str, key: str, root_cause: str, mitigation: str) -> str | None:
        """An existing entry with the same conclusion and a near-identical signature."""
        with self.sessions() as session:
            exact = session.scalar(
                select(SemanticEntryRow.id).where(
                    SemanticEntryRow.signature_key == key,
                    SemanticEntryRow.root_cause == root_cause,
                    SemanticEntryRow.mitigation == mitigation,
                )
            )
        if exact:
            return exact
        hits = self.entries.query(
            signature, n=1, where={"$and": [{"root_cause": root_cause}, {"mitigation": mitigation}]}
        )
        if hits and hits[0].similarity >= self.merge_similarity:
            return hits[0].id
        return None

    def _index_entries(self, ids: list[str]) -> None:
        with self.sessions() as session:
            rows = list(session.scalars(select(SemanticEntryRow).where(SemanticEntryRow.id.in_(ids))))
        self.entries.upsert(
            [r.id for r in rows],
            [r.signature for r in rows],
            [{"root_cause": r.root_cause, "mitigation": r.mitigation, "status": r.status} for r in rows],
        )
        with self.sessions.begin() as session:
            session.execute(
                update(SemanticEntryRow)
                .where(SemanticEntryRow.id.in_([r.id for r in rows]))
                .values(indexed=True, embedding_model=self.entries.active_model)
            )

    # ------------------------------------------------------------------ runbooks

    def index_runbook(self, name: str, text: str) -> int:
        """Store/replace a runbook and index its sections; returns the number of chunks."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        runbook_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"runbook:{name}"))
        chunks = chunk_runbook(text)
        with self.sessions.begin() as session:
            row = session.get(RunbookRow, runbook_id)
            if row is not None and row.content_hash == digest and row.indexed and not self.runbooks.stale:
                return row.chunks
            if row is None:
                row = RunbookRow(id=runbook_id, name=name, text=text, content_hash=digest)
                session.add(row)
            row.text, row.content_hash, row.chunks, row.indexed = text, digest, len(chunks), False
            row.updated_at = utcnow()
        self._index_runbook(runbook_id, name, chunks)
        return len(chunks)

    def _index_runbook(self, runbook_id: str, name: str, chunks: list[tuple[str, str]]) -> None:
        self.runbooks.delete(where={"runbook_id": runbook_id})
        self.runbooks.upsert(
            [f"{runbook_id}:{i}" for i in range(len(chunks))],
            [f"{name}: {title}\n{body}" if title else f"{name}\n{body}" for title, body in chunks],
            [{"runbook_id": runbook_id, "runbook": name, "section": title} for title, _ in chunks],
        )
        with self.sessions.begin() as session:
            session.execute(
                update(RunbookRow)
                .where(RunbookRow.id == runbook_id)
                .values(indexed=True, embedding_model=self.runbooks.active_model)
            )

    def index_runbook_dir(self, path: str | Path) -> dict[str, int]:
        """Index every ``*.md``/``*.txt`` file under ``path`` (name = relative path)."""
        root = Path(path)
        out = {}
        for f in sorted([*root.rglob("*.md"), *root.rglob("*.txt")]):
            out[str(f.relative_to(root))] = self.index_runbook(str(f.relative_to(root)), f.read_text())
        return out

    # ------------------------------------------------------------------ lookup

    def lookup(self, signature: str, *, k: int = 5, include_demoted: bool = False) -> Lookup:
        """Learned entries and runbook sections relevant to a fault signature.

        Learned entries are ranked by similarity, with a bonus for promoted entries and their
        track record; demoted entries are left out unless asked for.
        """
        learned: list[Knowledge] = []
        hits = self.entries.query(signature, n=k * 3)
        if hits:
            with self.sessions() as session:
                rows = {
                    r.id: r
                    for r in session.scalars(
                        select(SemanticEntryRow)
                        .options(selectinload(SemanticEntryRow.supports))
                        .where(SemanticEntryRow.id.in_([h.id for h in hits]))
                    )
                }
            for h in hits:
                row = rows.get(h.id)
                if row is None or (row.status == "demoted" and not include_demoted):
                    continue
                learned.append(
                    Knowledge(
                        kind="learned", similarity=h.similarity, text=row.signature, root_cause=row.root_cause,
                        mitigation=row.mitigation, status=row.status, success_count=row.success_count,
                        failure_count=row.failure_count, episode_ids=[s.episode_id for s in row.supports],
                        entry_id=row.id,
                    )
                )  # fmt: skip

            def score(kn: Knowledge) -> float:
                total = kn.success_count + kn.failure_count
                rate = (kn.success_count + 1) / (total + 2)
                return kn.similarity + (0.1 if kn.status == "promoted" else 0.0) + 0.05 * rate

            learned.sort(key=score, reverse=True)
        runbooks = [
            Knowledge(kind="runbook", similarity=h.similarity, text=h.document, runbook=str(h.metadata.get("runbook", "")))
            for h in self.runbooks.query(signature, n=k)
        ]
        return Lookup(learned=learned[:k], runbooks=runbooks)

    def entry(self, entry_id: str) -> SemanticEntryRow | None:
        with self.sessions() as session:
            return session.scalar(
                select(SemanticEntryRow)
                .options(selectinload(SemanticEntryRow.supports))
                .where(SemanticEntryRow.id == entry_id)
            )

    def all_entries(self) -> list[SemanticEntryRow]:
        with self.sessions() as session:
            return list(session.scalars(select(SemanticEntryRow).options(selectinload(SemanticEntryRow.supports))))

    # ------------------------------------------------------------------ upkeep

    def upkeep(
        self,
        *,
        max_candidate_age_days: float = 90.0,
        max_demoted_age_days: float = 180.0,
        now: datetime | None = None,
    ) -> UpkeepReport:
        """Consolidate near-duplicate entries, re-evaluate status, expire stale ones, re-embed
        after an embedding-model change, and index anything a crash left unindexed."""
        report = UpkeepReport()
        now = now or datetime.now(UTC)
        for name, index, model in (
            ("entries", self.entries, SemanticEntryRow),
            ("runbooks", self.runbooks, RunbookRow),
        ):
            if index.stale:
                index.rebuild()
                with self.sessions.begin() as session:
                    result = cast(CursorResult[Any], session.execute(update(model).values(indexed=False, embedding_model=None)))
                    report.reembedded[name] = result.rowcount or 0
        report.repaired = self.repair()  # vectors must exist before consolidation compares them
        report.merged = self._consolidate()
        with self.sessions.begin() as session:
            changed = []
            expired = []
            for row in session.scalars(select(SemanticEntryRow)):
                status = self._status(row)
                if status != row.status:
                    row.status = status
                    row.indexed = False
                    changed.append(row.id)
                age = now - _aware(row.last_seen_at)
                if (row.status == "candidate" and age > timedelta(days=max_candidate_age_days)) or (
                    row.status == "demoted" and age > timedelta(days=max_demoted_age_days)
                ):
                    expired.append(row)
            for row in expired:
                session.delete(row)
            report.status_changes = len(changed)
            report.expired = len(expired)
        if expired:
            self.entries.delete([r.id for r in expired])
        again = self.repair()
        report.repaired = {k: report.repaired.get(k, 0) + v for k, v in again.items()}
        return report

    def _consolidate(self) -> int:
        """Merge entries with the same root cause and mitigation whose signatures are near-identical."""
        merged = 0
        groups: dict[tuple[str, str], list[str]] = {}
        for row in self.all_entries():
            groups.setdefault((row.root_cause, row.mitigation), []).append(row.id)
        for (root_cause, mitigation), ids in groups.items():
            if len(ids) < 2:
                continue
            got = self.entries.collection.get(ids=ids, include=["embeddings"])
            vectors = dict(zip(got["ids"], got["embeddings"], strict=False))
            keep_order = sorted(ids, key=lambda i: _created(self, i))
            absorbed: set[str] = set()
            for i, a in enumerate(keep_order):
                if a in absorbed or a not in vectors:
                    continue
                for b in keep_order[i + 1 :]:
                    if b in absorbed or b not in vectors:
                        continue
                    if _cosine(vectors[a], vectors[b]) >= self.merge_similarity:
                        self._merge(into=a, other=b)
                        absorbed.add(b)
                        merged += 1
            del root_cause, mitigation
        return merged

    def _merge(self, *, into: str, other: str) -> None:
        with self.sessions.begin() as session:
            keep = session.get(SemanticEntryRow, into)
            gone = session.get(SemanticEntryRow, other)
            if keep is None or gone is None:
                return
            have = {s.episode_id for s in keep.supports}
            for s in list(gone.supports):
                if s.episode_id not in have:
                    keep.supports.append(SemanticSupportRow(episode_id=s.episode_id, success=s.success))
                    if s.success:
                        keep.success_count += 1
                    else:
                        keep.failure_count += 1
            keep.last_seen_at = max(_aware(keep.last_seen_at), _aware(gone.last_seen_at))
            keep.status = self._status(keep)
            keep.indexed = False
            session.delete(gone)
        self.entries.delete([other])

    def repair(self) -> dict[str, int]:
        """Index rows left unindexed; drop vectors without rows. Idempotent."""
        with self.sessions() as session:
            entry_ids = list(session.scalars(select(SemanticEntryRow.id).where(SemanticEntryRow.indexed.is_(False))))
            books = list(session.scalars(select(RunbookRow).where(RunbookRow.indexed.is_(False))))
            all_entries = set(session.scalars(select(SemanticEntryRow.id)))
            all_books = set(session.scalars(select(RunbookRow.id)))
        if entry_ids:
            self._index_entries(entry_ids)
        for book in books:
            self._index_runbook(book.id, book.name, chunk_runbook(book.text))
        orphans = sorted(self.entries.all_ids() - all_entries)
        self.entries.delete(orphans)
        chunk_orphans = sorted(i for i in self.runbooks.all_ids() if i.split(":")[0] not in all_books)
        self.runbooks.delete(chunk_orphans)
        return {
            "entries_indexed": len(entry_ids),
            "runbooks_indexed": len(books),
            "orphans_removed": len(orphans) + len(chunk_orphans),
        }


def _created(mem: SemanticMemory, entry_id: str) -> datetime:
    row = mem.entry(entry_id)
    return _aware(row.created_at) if row else datetime.max.replace(tzinfo=UTC)


def _cosine(a: Iterable[float], b: Iterable[float]) -> float:
    import numpy as np

    va, vb = np.asarray(list(a), dtype="float64"), np.asarray(list(b), dtype="float64")
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb)) or 1.0
    return float(va @ vb) / denom
