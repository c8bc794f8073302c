"""One Chroma collection that mirrors an SQL table: open, upsert, query, detect a model change.

WHY: SQL is the source of truth and Chroma is a derived index. Every writer follows the same
order (commit the row with ``indexed=False`` -> upsert the vector by the row's id -> mark
``indexed=True``), so a crash at any point leaves either nothing or a row that ``repair`` can
index again; upserts by id are idempotent, and query hits without a row are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from memory.vectors import collection_embedding_name, embedding_function


@dataclass
class Hit:
    id: str
    distance: float
    metadata: dict[str, Any]
    document: str

    @property
    def similarity(self) -> float:
        """Cosine similarity (the collections use the cosine space)."""
        return 1.0 - self.distance


class VectorIndex:
    """A named collection with a known embedding function.

    If the collection was built with another embedding function than the current one, it keeps
    serving queries with the persisted function (``stale`` is True) until ``rebuild`` re-embeds.
    """

    def __init__(self, client: Any, name: str, ef: EmbeddingFunction[Documents] | None = None) -> None:
        self.client = client
        self.name = name
        self.ef = ef or embedding_function()
        self.model_name = self.ef.name()
        self.stale = False
        self.collection = self._open()

    def _open(self) -> Any:
        existing = {c if isinstance(c, str) else c.name for c in self.client.list_collections()}
        if self.name in existing:
            col = self.client.get_collection(self.name)
            persisted = collection_embedding_name(col)
            if persisted and persisted != self.model_name:
                self.stale = True
                return col
            return self.client.get_collection(self.name, embedding_function=self.ef)
        return self.client.create_collection(
            self.name, embedding_function=self.ef, metadata={"hnsw:space": "cosine"}
        )

    def rebuild(self) -> None:
        """Drop the collection and recreate it with the current embedding function (caller re-indexes)."""
        self.client.delete_collection(self.name)
        self.collection = self.client.create_collection(
            self.name, embedding_function=self.ef, metadata={"hnsw:space": "cosine"}
        )
        self.stale = False

    def upsert(self, ids: list[str], documents: list[str], metadatas: list[dict[str, Any]]) -> None:
        if ids:
            self.collection.upsert(ids=ids, documents=documents, metadatas=[_clean(m) for m in metadatas])

    def delete(self, ids: list[str] | None = None, where: dict[str, Any] | None = None) -> None:
        if ids:
            self.collection.delete(ids=ids)
        elif where:
            self.collection.delete(where=where)

    def all_ids(self) -> set[str]:
        return set(self.collection.get(include=[])["ids"])

    def count(self) -> int:
        return int(self.collection.count())

    def embed(self, text: str) -> list[float] | None:
        """The query vector for ``text``, or None while the collection is stale (its persisted
        function, not ours, must embed queries then)."""
        if self.stale:
            return None
        return [float(x) for x in self.ef([text])[0]]

    def cosine(self, vector: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity of stored vectors ``ids`` to ``vector`` (ids without a vector are absent)."""
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["embeddings"])
        qn = math.sqrt(sum(x * x for x in vector)) or 1.0
        out = {}
        for id_, emb in zip(got["ids"], got["embeddings"], strict=True):
            vn = math.sqrt(sum(float(x) * float(x) for x in emb)) or 1.0
            out[id_] = sum(float(a) * float(b) for a, b in zip(vector, emb, strict=True)) / (qn * vn)
        return out

    def query(
        self, text: str, *, n: int, where: dict[str, Any] | None = None, embedding: list[float] | None = None
    ) -> list[Hit]:
        """Nearest ``n`` vectors to ``text`` (or to a precomputed ``embedding`` of it)."""
        total = self.count()
        if total == 0 or n <= 0:
            return []
        probe: dict[str, Any] = {"query_embeddings": [embedding]} if embedding is not None else {"query_texts": [text]}
        result = self.collection.query(
            **probe, n_results=min(n, total), where=where, include=["metadatas", "documents", "distances"]
        )
        hits = []
        for i, id_ in enumerate(result["ids"][0]):
            hits.append(
                Hit(
                    id=id_,
                    distance=float(result["distances"][0][i]),
                    metadata=dict(result["metadatas"][0][i] or {}),
                    document=(result["documents"][0][i] or ""),
                )
            )
        return hits

    @property
    def active_model(self) -> str:
        """Name of the embedding function the stored vectors were made with."""
        return (collection_embedding_name(self.collection) or self.model_name) if self.stale else self.model_name


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata values must be str/int/float/bool (no None, no lists)."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, str | int | float | bool) else str(v)
    return out


class LexicalIndex:
    """Okapi BM25 over pre-tokenised documents, kept in memory.

    WHY: dense embeddings blur the exact tokens that identify a fault (a service name, a metric
    name, an error template word); BM25 rewards rare shared tokens and is cheap to rebuild from
    SQL, which stays the source of truth (no second store to keep consistent).
    """

    def __init__(self, docs: dict[str, list[str]] | None = None, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[str, int]] = {}  # token -> {doc id: term frequency}
        self.lengths: dict[str, int] = {}
        self.total_length = 0
        for doc_id, tokens in (docs or {}).items():
            self.add(doc_id, tokens)

    def add(self, doc_id: str, tokens: list[str]) -> None:
        if doc_id in self.lengths:
            raise ValueError(f"document {doc_id!r} already indexed (rebuild the index to change it)")
        tf: dict[str, int] = {}
        for t in tokens:
            tf[t] = tf.get(t, 0) + 1
        self.lengths[doc_id] = len(tokens)
        self.total_length += len(tokens)
        for t, f in tf.items():
            self.postings.setdefault(t, {})[doc_id] = f

    def __len__(self) -> int:
        return len(self.lengths)

    def scores(self, tokens: list[str]) -> dict[str, float]:
        """BM25 score of every document sharing at least one query token."""
        n = len(self.lengths)
        if not n:
            return {}
        avg = self.total_length / n or 1.0
        out: dict[str, float] = {}
        for t in set(tokens):
            posting = self.postings.get(t)
            if not posting:
                continue
            idf = math.log(1.0 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for doc_id, f in posting.items():
                norm = f + self.k1 * (1 - self.b + self.b * self.lengths[doc_id] / avg)
                out[doc_id] = out.get(doc_id, 0.0) + idf * f * (self.k1 + 1) / norm
        return out

    def idf(self, token: str) -> float:
        """BM25 idf; a token no document has gets the highest possible value."""
        n, df = len(self.lengths), len(self.postings.get(token, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def coverage(self, tokens: list[str], doc_id: str) -> float:
        """Share of the query's idf mass that ``doc_id`` contains (0..1)."""
        unique = set(tokens)
        total = sum(self.idf(t) for t in unique)
        found = sum(self.idf(t) for t in unique if doc_id in self.postings.get(t, ()))
        return found / total if total else 0.0

    def top(self, tokens: list[str], *, n: int, min_coverage: float = 0.0) -> list[tuple[str, float]]:
        """Best ``n`` documents; with ``min_coverage``, only those sharing at least that share of
        the query's idf mass (one common word in common is not a lexical match)."""
        ranked = sorted(self.scores(tokens).items(), key=lambda kv: (-kv[1], kv[0]))
        if min_coverage > 0:
            ranked = [(d, s) for d, s in ranked[: 4 * n] if self.coverage(tokens, d) >= min_coverage]
        return ranked[:n]


def rrf(
    rankings: list[list[str]],
    *,
    k: int = 60,
    weights: list[float] | None = None,
    demote: dict[str, float] | None = None,
) -> dict[str, float]:
    """Reciprocal-rank fusion: sum of weight/(k + rank + demote[id]) over the rankings an id is in.

    WHY ranks, not scores: cosine and BM25 live on unrelated scales; RRF needs no calibration and
    is robust to one list being poor on a given query. ``demote`` moves an id a few places down
    in every list (a bounded nudge, unlike a score multiplier that can outweigh similarity).
    """
    demote = demote or {}
    weights = weights or [1.0] * len(rankings)
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank + demote.get(doc_id, 0.0))
    return fused
