"""Store change events and read the recent ones back (for diagnosis and the API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.changes.models import ChangeEvent
from services.changes.normalize import Change
from services.storage.base import session_scope, utcnow
from services.storage.upsert import insert_new


def store_changes(session: Session, changes: list[Change]) -> dict[str, int]:
    """Insert the changes not seen before (by ``dedup_key``): ``{accepted, stored, duplicates}``."""
    rows = {c.dedup_key: {"dedup_key": c.dedup_key, "at": c.at, "component": c.component, "kind": c.kind,
                          "source": c.source, "status": c.status, "version": c.version, "environment": c.environment,
                          "detail": c.detail, "data": c.data, "received_at": utcnow()} for c in changes}
    stored = insert_new(session, ChangeEvent, rows=list(rows.values()), keys=["dedup_key"])
    return {"accepted": len(changes), "stored": stored, "duplicates": len(changes) - stored}


def as_change(row: ChangeEvent) -> dict[str, Any]:
    """The shape of ``Telemetry.changes``: ``{at, component, kind, detail}`` plus what else is known."""
    return {"at": row.at.timestamp(), "component": row.component, "kind": row.kind, "detail": row.detail,
            "source": row.source, "status": row.status, "version": row.version, "environment": row.environment,
            "id": row.id}


def recent_changes(database_url: str, *, minutes: int = 60, component: str | None = None,
                   limit: int = 500) -> list[dict[str, Any]]:
    """Changes of the last ``minutes`` (newest first), of one component when named."""
    query = select(ChangeEvent).where(ChangeEvent.at >= utcnow() - timedelta(minutes=minutes))
    if component:
        query = query.where(ChangeEvent.component == component)
    with session_scope(database_url) as session:
        rows = session.scalars(query.order_by(ChangeEvent.at.desc(), ChangeEvent.id.desc()).limit(limit)).all()
        return [as_change(r) for r in rows]
