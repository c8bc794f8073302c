"""Writing and checking the hash-chained audit log; every mutating path calls ``record`` in its transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from services.audit.models import AuditEntry
from services.storage.base import utcnow

GENESIS = "0" * 64
_PG_LOCK = 0x41554449  # "AUDI": serialises appends so two transactions never chain to the same parent


def _canonical_time(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def digest(*, prev_hash: str, at: datetime, actor: str, action: str, subject: str, data: dict) -> str:
    """The hash of one entry: its content and its parent's hash, in a canonical JSON form."""
    body = json.dumps([prev_hash, _canonical_time(at), actor, action, subject, data],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def record(session: Session, *, actor: str, action: str, subject: str = "", data: dict | None = None) -> str:
    """Append an entry chained to the last one; returns its hash.

    The parent must be the committed last entry. On PostgreSQL a transaction-scoped advisory lock
    is taken before reading it; on SQLite the row is inserted first, which takes the database's
    single write lock, and its parent is read after. Core statements: this runs on every ingest.
    """
    table = AuditEntry.__table__
    at, data = utcnow(), data or {}
    values = {"at": at, "actor": actor[:200], "action": action[:100], "subject": subject[:200], "data": data}

    def chained(prev: str | None) -> dict:
        prev = prev or GENESIS
        return {"prev_hash": prev, "hash": digest(prev_hash=prev, at=at, actor=values["actor"],
                                                  action=values["action"], subject=values["subject"], data=data)}

    last = select(table.c.hash).order_by(table.c.id.desc()).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        link = chained(session.execute(last).scalar())
        session.execute(insert(table).values(**values, **link))
        return link["hash"]
    new_id = session.execute(insert(table).values(**values, prev_hash="", hash="").returning(table.c.id)).scalar_one()
    link = chained(session.execute(last.where(table.c.id < new_id)).scalar())
    session.execute(update(table).where(table.c.id == new_id).values(**link))
    return link["hash"]


@dataclass
class ChainCheck:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "first_bad_id": self.first_bad_id, "reason": self.reason}


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every hash in id order; the first entry whose content or link does not match is reported."""
    prev, checked = GENESIS, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=500)):
        if entry.prev_hash != prev:
            return ChainCheck(False, checked, entry.id, "link broken: an entry before it was removed or changed")
        expected = digest(prev_hash=entry.prev_hash, at=entry.at, actor=entry.actor, action=entry.action,
                          subject=entry.subject, data=entry.data)
        if entry.hash != expected:
            return ChainCheck(False, checked, entry.id, "content changed after it was written")
        prev, checked = entry.hash, checked + 1
    return ChainCheck(True, checked)


def entry_dict(entry: AuditEntry) -> dict:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "data": entry.data, "prev_hash": entry.prev_hash, "hash": entry.hash}
