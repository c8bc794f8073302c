"""Terraform patch proposals made by the IaC reconciler, waiting for review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class DriftProposal(Base):
    __tablename__ = "drift_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    title: Mapped[str] = mapped_column(String(300))
    diff: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[list] = mapped_column(default=list)
    records: Mapped[list] = mapped_column(default=list)
    verification: Mapped[dict] = mapped_column(default=dict)
    branch: Mapped[str | None] = mapped_column(String(200))
    reviewer: Mapped[str | None] = mapped_column(String(200))
    review_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column()
