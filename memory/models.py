"""SQL tables of the memory library (SQLAlchemy 2, typed ``mapped_column``).

WHY an own DeclarativeBase: memory/ is a plain library; the platform's Alembic migrations include
``MemoryBase.metadata`` beside their own, and standalone users call ``create_tables(engine)``.
All tables are prefixed ``memory_``. JSON columns hold the variable-shape parts of an episode so
that one episode is one row, written in one transaction (no half episode can exist in SQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryBase(DeclarativeBase):
    """Declarative base of every memory_* table."""


class EpisodeRow(MemoryBase):
    """One resolved incident's trajectory. ``indexed`` is False until its vector is in Chroma."""

    __tablename__ = "memory_episodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    signals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    compressed_context: Mapped[str] = mapped_column(Text, default="")
    hypotheses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    root_cause: Mapped[str] = mapped_column(String(500), default="", index=True)
    outcome: Mapped[str] = mapped_column(String(50), default="unknown")
    time_to_recover_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    document: Mapped[str] = mapped_column(Text, default="")
    indexed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    embedding_model: Mapped[str | None] = mapped_column(String(100), nullable=True)


class SemanticEntryRow(MemoryBase):
    """Learned knowledge: fault signature -> root cause -> mitigation, with its track record."""

    __tablename__ = "memory_semantic_entries"
    __table_args__ = (UniqueConstraint("signature_key", "root_cause", "mitigation", name="uq_memory_semantic_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    signature: Mapped[str] = mapped_column(Text)
    signature_key: Mapped[str] = mapped_column(String(64), index=True)
    root_cause: Mapped[str] = mapped_column(String(500))
    mitigation: Mapped[str] = mapped_column(String(500))
    success_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="candidate", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    indexed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    embedding_model: Mapped[str | None] = mapped_column(String(100), nullable=True)

    supports: Mapped[list[SemanticSupportRow]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="SemanticSupportRow.id"
    )


class SemanticSupportRow(MemoryBase):
    """Link from a semantic entry to an episode that supports (or contradicts) it."""

    __tablename__ = "memory_semantic_supports"
    __table_args__ = (UniqueConstraint("entry_id", "episode_id", name="uq_memory_semantic_support"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("memory_semantic_entries.id", ondelete="CASCADE"), index=True)
    episode_id: Mapped[str] = mapped_column(String(64), index=True)
    success: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    entry: Mapped[SemanticEntryRow] = relationship(back_populates="supports")


class RunbookRow(MemoryBase):
    """An operator runbook (Markdown or plain text); its sections are embedded as chunks."""

    __tablename__ = "memory_runbooks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    indexed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    embedding_model: Mapped[str | None] = mapped_column(String(100), nullable=True)


def create_tables(engine: Engine) -> None:
    """Create the memory_* tables (standalone use; the platform uses its Alembic migrations)."""
    MemoryBase.metadata.create_all(engine)
