"""Alerts as received: one row per fingerprint, counting repeats instead of storing duplicates."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_fingerprint_status", "fingerprint", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
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
    dispatched: Mapped[bool] = mapped_column(default=False)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)


class NormalizedAlert(BaseModel):
    """The one shape every ingest format is turned into before storage."""

    source: str
    name: str = Field(min_length=1, max_length=200)
    status: str = "firing"
    severity: str = "warning"
    service: str | None = None
    node: str | None = None
    cluster: str | None = None
    alert_group: str | None = None
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = None
    fingerprint: str | None = None
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
