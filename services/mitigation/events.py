"""Mitigation events in the platform database: the actor appends one per mitigation, training reads them all.

causal/ validates and trains on plain rows; this module only moves rows in and out of SQL, so the
library stays free of the platform. A file import/export keeps the CSV/JSONL format of causal.data
for users who bring their own history or want to inspect it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from services.mitigation.models import MitigationEvent
from services.storage.base import session_scope

_PAGE = 2000


def _occurred_at(timestamp: str) -> datetime:
    try:
        value = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record_event(database_url: str, *, row: Mapping[str, Any], source: str = "actor") -> dict[str, Any]:
    """Validate one episode against causal.data's schema and store it; returns the typed row.

    Raises causal.data.ValidationError for a row that would poison training, so the caller learns
    at write time rather than the nightly job at read time.
    """
    from causal.data import ValidationError, validate_row

    try:
        clean = validate_row(row)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    try:
        with session_scope(database_url) as session:
            if session.scalar(select(MitigationEvent.id).where(MitigationEvent.event_id == clean["event_id"])):
                return clean  # the same episode written again (a redelivered task): stored once
            session.add(MitigationEvent(event_id=clean["event_id"], node_id=clean["node_id"], action=clean["action"],
                                        occurred_at=_occurred_at(clean["timestamp"]), source=source, row=clean))
    except IntegrityError:  # a concurrent writer stored the same episode first
        pass
    return clean


def iter_event_rows(database_url: str) -> Iterator[dict[str, Any]]:
    """Every stored row in recording order, read page by page (keyset on id) to bound memory."""
    last_id = 0
    while True:
        with session_scope(database_url) as session:
            page = session.execute(select(MitigationEvent.id, MitigationEvent.row).where(MitigationEvent.id > last_id)
                                   .order_by(MitigationEvent.id).limit(_PAGE)).all()
        if not page:
            return
        for row_id, row in page:
            last_id = row_id
            yield dict(row)


def count_events(database_url: str) -> int:
    with session_scope(database_url) as session:
        return int(session.scalar(select(func.count(MitigationEvent.id))) or 0)


def import_events(database_url: str, *, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a CSV/JSONL event table into the database; invalid rows and known event ids are skipped.

    Returns {"imported", "duplicates", "rejected": [{"line", "reason"}...]}.
    """
    from causal.data import load_events

    loaded = load_events(path)
    with session_scope(database_url) as session:
        known = set(session.scalars(select(MitigationEvent.event_id)))
        batch: list[dict[str, Any]] = []
        for record in loaded.frame.to_dict(orient="records"):
            clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
            if clean["event_id"] in known:
                continue
            known.add(clean["event_id"])
            batch.append({"event_id": clean["event_id"], "node_id": clean["node_id"], "action": clean["action"],
                          "occurred_at": _occurred_at(clean["timestamp"]), "source": "import", "row": clean,
                          "recorded_at": datetime.now(UTC)})
        if batch:
            session.execute(insert(MitigationEvent), batch)
    return {"imported": len(batch), "duplicates": loaded.n_valid - len(batch),
            "rejected": [e.to_dict() for e in loaded.errors]}


def export_events(database_url: str, *, path: str | os.PathLike[str]) -> int:
    """Write every stored event to a CSV/JSONL file (by extension); returns the row count."""
    import pandas as pd

    from causal.data import COLUMNS, write_events

    frame = pd.DataFrame(list(iter_event_rows(database_url)), columns=list(COLUMNS))
    write_events(frame, path)
    return len(frame)
