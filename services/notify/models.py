"""The webhook outbox: one row per (event, destination), written before anything is sent.

WHY a table and not the broker: a notification that only lives in a queue message (or in an
embedded worker's memory) dies with the broker or the process, and one message per event makes
every destination get the event again when one of them fails. A row per destination is delivered,
retried and dead-lettered on its own, and outlives any process.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow

PENDING, DELIVERED, DEAD, SILENCED = "pending", "delivered", "dead", "silenced"
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD, SILENCED)
DESTINATION_KINDS = ("webhook", "slack", "slack_api", "pagerduty")


class WebhookDelivery(Base):
    """One event for one destination; ``body`` is the exact bytes sent (and signed) on every attempt.

    ``next_attempt_at`` doubles as a lease: a worker claims a due row by moving it into the future
    (compare-and-set on its current value), so a task and the sweep never send the same row at once,
    and a worker that dies mid-send leaves a row that becomes due again when the lease runs out.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "destination"),
                      Index("ix_webhook_deliveries_due", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column()
    destination: Mapped[str] = mapped_column(String(2000))
    destination_kind: Mapped[str] = mapped_column(String(16), default="webhook")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    kind: str
    incident_id: int | None
    destination: str
    destination_kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class Silence(Base):
    """Mutes the notifications whose labels match every matcher, between ``starts_at`` and ``ends_at``.

    Like Alertmanager's silences: alerts still come in, incidents still open and the agents still
    work; only the notifications are held. A muted event is still written to the outbox, as
    ``silenced`` with the silence named, so nothing is lost and an operator can redeliver it.
    """

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(primary_key=True)
    matchers: Mapped[list] = mapped_column()
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SilenceCreate(BaseModel):
    matchers: list[str] = Field(min_length=1, max_length=20, description='e.g. ["service=\\"api\\"", "kind=~\\"opened|escalated\\""]')
    duration_s: int = Field(ge=60, le=90 * 24 * 3600, description="how long from now (or from starts_at)")
    starts_at: datetime | None = None
    comment: str = Field(default="", max_length=2000)


class SilenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime


class SlackThread(Base):
    """The Slack message an incident's thread hangs from, per channel.

    ``ts`` is the parent message's timestamp (Slack's message id): every later step is posted with
    ``thread_ts=ts`` and the parent is edited with ``chat.update``, so the channel gets one message
    per incident. ``last_event_id`` is the last event whose reply was posted: a delivery retried
    after its reply went out (the status update failed) does not post the reply twice.
    """

    __tablename__ = "slack_threads"
    __table_args__ = (UniqueConstraint("incident_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column()
    channel: Mapped[str] = mapped_column(String(200))  # as configured (an id, or a name like #incidents)
    channel_id: Mapped[str] = mapped_column(String(64))  # as Slack answered: chat.update needs the id
    ts: Mapped[str] = mapped_column(String(32))
    last_event_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
