"""Periodic upkeep of the long-term memory (the platform schedules ``run_upkeep`` with Celery beat).

WHY one entry point: the scheduler should not need to know the layers. This consolidates and
expires semantic entries, re-embeds every collection after an embedding-model change, expires
episodes past their retention (if one is set) and repairs anything a crash left half-indexed.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction
from sqlalchemy.engine import Engine

from memory.episodic import EpisodicMemory
from memory.semantic import SemanticMemory


def run_upkeep(
    engine: Engine,
    *,
    chroma_client: Any,
    embedding: EmbeddingFunction[Documents] | None = None,
    episode_retention_days: float | None = None,
    max_candidate_age_days: float = 90.0,
    merge_similarity: float = 0.92,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Run every upkeep step once; returns a JSON-safe report."""
    episodic = EpisodicMemory(engine, chroma_client=chroma_client, embedding=embedding)
    semantic = SemanticMemory(
        engine, chroma_client=chroma_client, embedding=embedding, merge_similarity=merge_similarity
    )
    return {
        "episodic": episodic.upkeep(retention_days=episode_retention_days, now=now),
        "semantic": asdict(semantic.upkeep(max_candidate_age_days=max_candidate_age_days, now=now)),
    }
