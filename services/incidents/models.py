"""Incidents, their timeline and their root-cause hypotheses."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow

OPEN_STATUSES = ("open", "diagnosing", "mitigating", "awaiting_approval", "verifying")


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(32), default="open", index=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning", index=True)
    group_key: Mapped[str] = mapped_column(String(300), index=True)
    # the group key while this is the group's current incident; unique, so however many API processes
    # ingest at once a group has one current incident (taken over, not duplicated, when it goes stale)
    open_group_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    service: Mapped[str | None] = mapped_column(String(200))
    node: Mapped[str | None] = mapped_column(String(200))
    cluster: Mapped[str | None] = mapped_column(String(200))
    root_cause: Mapped[str | None] = mapped_column(String(200))
    mitigation: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(default=5)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # the console's time filter
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    assignee: Mapped[str | None] = mapped_column(String(200))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column()


class IncidentComponent(Base):
    """A component (service or node) some alert of the incident is on: what correlation asks of open incidents.

    Why a table: "which open incident has an alert on one of these components" is asked by every post
    that opens a group. Read from the alerts it cost every alert of every open incident (12-93 ms per
    post at 15,000 alerts, ``python -m bench ingest``); here it is one row per (component, incident).
    The rows are written by database triggers on ``alerts`` (migration 0086), so every path that stores
    or moves an alert, in any process, keeps them. There is no unique constraint on purpose: two
    transactions adding the same pair never wait for each other (nor deadlock); a rare twin row is
    harmless to the reader, which takes distinct pairs.
    """

    __tablename__ = "incident_components"
    __table_args__ = (Index("ix_incident_components_component", "component", "incident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    component: Mapped[str] = mapped_column(String(200))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))


class TimelineEvent(Base):
    """One step of an incident; ``dedup_key`` makes a redelivered task write its step once."""

    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_id", "dedup_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(default=dict)
    dedup_key: Mapped[str | None] = mapped_column(String(200))


class Hypothesis(Base):
    __tablename__ = "hypotheses"
    # the same fault on two components (cpu_saturation on a service and on its node) is two hypotheses
    __table_args__ = (UniqueConstraint("incident_id", "component", "root_cause",
                                       name="uq_hypotheses_incident_id_component"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    root_cause: Mapped[str] = mapped_column(String(200))
    component: Mapped[str] = mapped_column(String(300), default="", server_default="")
    component_kind: Mapped[str | None] = mapped_column(String(32), default=None)
    confidence: Mapped[float] = mapped_column(default=0.0)
    evidence: Mapped[list] = mapped_column(default=list)
    rank: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TimelineRead(BaseModel):
    id: int
    at: datetime
    kind: str
    actor: str
    message: str
    data: dict
    model_config = {"from_attributes": True}


class HypothesisRead(BaseModel):
    root_cause: str
    component: str = ""
    component_kind: str | None = None
    confidence: float
    evidence: list
    rank: int
    model_config = {"from_attributes": True}


class IncidentRead(BaseModel):
    id: int
    title: str
    status: str
    severity: str
    service: str | None
    node: str | None
    cluster: str | None
    root_cause: str | None
    mitigation: str | None
    summary: str
    priority: int
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    assignee: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    model_config = {"from_attributes": True}


class IncidentDetail(IncidentRead):
    timeline: list[TimelineRead]
    hypotheses: list[HypothesisRead]
    approvals: list[dict]
    actions: list[dict]
