"""One Chroma collection that mirrors an SQL table: open, upsert, query, detect a model change.

WHY: SQL is the source of truth and Chroma is a derived index. Every writer follows the same
order (commit the row with ``indexed=False`` -> upsert the vector by the row's id -> mark
``indexed=True``), so a crash at any point leaves either nothing or a row that ``repair`` can
index again; upserts by id are idempotent, and query hits without a row are ignored.
"""

from __future__ import annotations

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

    def query(self, text: str, *, n: int, where: dict[str, Any] | None = None) -> list[Hit]:
        total = self.count()
        if total == 0 or n <= 0:
            return []
        result = self.collection.query(
            query_texts=[text], n_results=min(n, total), where=where, include=["metadatas", "documents", "distances"]
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
