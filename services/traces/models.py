"""Spans received over OTLP/HTTP: a bounded recent window per service, for call edges and their health."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class TraceSpan(Base):
    """One span: who (service, host), what (name, kind, peer), when (start, duration), and whether it failed."""

    __tablename__ = "trace_spans"
    __table_args__ = (
        UniqueConstraint("trace_id", "span_id", name="uq_trace_spans_trace_span"),  # a retried export stores once
        Index("ix_trace_spans_service_start", "service", "start"),
        Index("ix_trace_spans_trace_parent", "trace_id", "parent_span_id"),
        Index("ix_trace_spans_start", "start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[int] = mapped_column(default=0)  # OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    peer: Mapped[str | None] = mapped_column(String(200))  # peer.service / db.system of a call leaving the service
    start: Mapped[float] = mapped_column(Float)  # epoch seconds
    duration_s: Mapped[float] = mapped_column(Float)
    error: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
