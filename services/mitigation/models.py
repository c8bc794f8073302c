"""Causal mitigation state shared by every process: training events and the model registry.

WHY in the database: the actor (agents workers) writes outcome rows and reads the promoted model,
the training job (jobs workers) reads the rows and writes models, the API lists and promotes; they
run in different containers with no shared disk.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class MitigationEvent(Base):
    """One node mitigation episode: the validated row of causal.data's schema (features, action, outcomes).

    The whole row is kept as JSON so a schema change in causal/ needs no migration; the columns
    beside it are what queries filter and order on.
    """

    __tablename__ = "mitigation_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    node_id: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(32), default="actor")  # actor | import
    row: Mapped[dict] = mapped_column(default=dict)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CausalModelVersion(Base):
    """A stored model version: metadata and the joblib artifact (loaded only when asked for)."""

    __tablename__ = "causal_models"

    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    meta: Mapped[dict] = mapped_column(default=dict)
    artifact: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CausalModelPointer(Base):
    """The active version: one row per slot, so "one active version" holds by construction."""

    __tablename__ = "causal_model_pointers"

    slot: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("causal_models.version"))
    promoted_at: Mapped[datetime] = mapped_column(default=utcnow)
    info: Mapped[dict] = mapped_column(default=dict)
