"""Writing the audit log; every mutating path calls ``record`` inside its own transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.audit.models import AuditEntry


def record(session: Session, *, actor: str, action: str, subject: str = "", data: dict | None = None) -> None:
    session.add(AuditEntry(actor=actor, action=action, subject=subject, data=data or {}))
