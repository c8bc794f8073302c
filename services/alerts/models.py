"""Alerts as received: one row per fingerprint, counting repeats instead of storing duplicates."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_fingerprint_status", "fingerprint", "status"),
        # one firing row per fingerprint, whichever process stores it: repeats count, they never duplicate
        Index("uq_alerts_firing_fingerprint", "fingerprint", unique=True,
              sqlite_where=text("status = 'firing'"), postgresql_where=text("status = 'firing'")),
        # the dispatch outbox: the dispatcher scans only the (few) rows not yet handed to the queue
        Index("ix_alerts_undispatched", "id", sqlite_where=text("dispatched = 0"),
              postgresql_where=text("dispatched = false")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # looked up through ix_alerts_fingerprint_status
    source: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="firing")
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    service: Mapped[str | None] = mapped_column(String(200))
    node: Mapped[str | None] = mapped_column(String(200))
    cluster: Mapped[str | None] = mapped_column(String(200))
    alert_group: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(String(2000), default="")
    labels: Mapped[dict] = mapped_column(default=dict)
    annotations: Mapped[dict] = mapped_column(default=dict)
    raw: Mapped[dict] = mapped_column(default=dict)
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column()  # when the source said it resolved (its endsAt)
    count: Mapped[int] = mapped_column(default=1)
    # the outbox flag: False until the dispatcher has handed the alert's new incident to the queue
    dispatched: Mapped[bool] = mapped_column(default=False)
    # a SQLite dispatcher's claim (compare-and-set lease); PostgreSQL dispatchers lock the row instead
    dispatch_claimed_until: Mapped[datetime | None] = mapped_column()
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)


class NormalizedAlert(BaseModel):
    """The one shape every ingest format is turned into before storage; lengths are the columns'."""

    source: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    status: Literal["firing", "resolved"] = "firing"
    severity: Literal["critical", "high", "warning", "info"] = "warning"
    service: str | None = Field(default=None, max_length=200)
    node: str | None = Field(default=None, max_length=200)
    cluster: str | None = Field(default=None, max_length=200)
    alert_group: str | None = Field(default=None, max_length=500)
    summary: str = ""  # stored up to 2,000 characters; ``raw`` keeps the whole text
    labels: dict[str, str | None] = Field(default_factory=dict)
    annotations: dict[str, str | None] = Field(default_factory=dict)
    starts_at: datetime | None = None
    fingerprint: str | None = Field(default=None, max_length=500)
    raw: dict = Field(default_factory=dict)


class AlertRead(BaseModel):
    id: int
    fingerprint: str
    source: str
    name: str
    status: str
    severity: str
    service: str | None
    node: str | None
    cluster: str | None
    summary: str
    labels: dict
    count: int
    incident_id: int | None
    received_at: datetime
    last_seen_at: datetime
    ends_at: datetime | None = None

    model_config = {"from_attributes": True}
