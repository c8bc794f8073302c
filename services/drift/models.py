"""Terraform patch proposals made by the IaC reconciler, waiting for review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class DriftProposal(Base):
    __tablename__ = "drift_proposals"
    __table_args__ = (UniqueConstraint("workspace", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str] = mapped_column(String(200), default="")  # the reconciler's own proposal id
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    title: Mapped[str] = mapped_column(String(300))
    diff: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[list] = mapped_column(default=list)
    records: Mapped[list] = mapped_column(default=list)
    verification: Mapped[dict] = mapped_column(default=dict)
    instructions: Mapped[list] = mapped_column(default=list)
    needs_person: Mapped[list] = mapped_column(default=list)
    payload: Mapped[dict] = mapped_column(default=dict)  # everything needed to re-apply it on approval
    branch: Mapped[str | None] = mapped_column(String(200))
    reviewer: Mapped[str | None] = mapped_column(String(200))
    review_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column()


class IacWorkspaceState(Base):
    """Per-workspace reconciliation watermark, so each run reads only new trace records."""

    __tablename__ = "iac_workspaces"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column()
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_result: Mapped[dict] = mapped_column(default=dict)
