"""Change events (deploys, rollbacks, config changes) as posted by CI/CD tools and operators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class ChangeEvent(Base):
    """One change on one component; ``dedup_key`` makes a redelivered webhook a no-op."""

    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_at_component", "at", "component"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    component: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32), default="deploy")
    source: Mapped[str] = mapped_column(String(32), default="generic")
    status: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(200))
    environment: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
