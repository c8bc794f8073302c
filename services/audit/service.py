"""Writing and checking the hash-chained audit log; every mutating path calls ``record`` in its transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from services.audit.models import AuditEntry
from services.storage.base import utcnow
from services.storage.bulk import json_rows, recordset_insert

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


def record(session: Session, *, actor: str, action: str, subject: str = "", data: dict | None = None,
           holds_write_lock: bool = False) -> str:
    """Append an entry chained to the last one; returns its hash.

    The parent must be the committed last entry. On PostgreSQL a transaction-scoped advisory lock
    is taken before reading it; on SQLite the row is inserted first, which takes the database's
    single write lock, and its parent is read after. Core statements: this runs on every ingest.
    ``holds_write_lock``: the caller's SQLite transaction has already written (the ingest), so the
    parent can be read first and the entry inserted complete (two statements instead of three).
    """
    at, data = utcnow(), data or {}
    actor, action, subject = actor[:200], action[:100], subject[:200]
    values = {"at": at, "actor": actor, "action": action, "subject": subject, "data": data}

    def chained(prev: str | None) -> dict:
        prev = prev or GENESIS
        return {"prev_hash": prev, "hash": digest(prev_hash=prev, at=at, actor=actor, action=action, subject=subject,
                                                  data=data)}

    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_LOCK_SQL, {"k": _PG_LOCK})
        link = chained(session.execute(_LAST).scalar())
        session.execute(_INSERT, {**values, **link})  # one row as a dict: a list would be an executemany
        return link["hash"]
    if holds_write_lock:
        link = chained(session.execute(_LAST).scalar())
        session.execute(_INSERT, {**values, **link})
        return link["hash"]
    new_id = session.execute(_INSERT_RETURNING, {**values, "prev_hash": "", "hash": ""}).scalar_one()
    link = chained(session.execute(_LAST_BEFORE, {"before": new_id}).scalar())
    session.execute(_LINK, {"entry": new_id, "new_prev": link["prev_hash"], "new_hash": link["hash"]})
    return link["hash"]


def record_many(session: Session, entries: list[dict], *, holds_write_lock: bool = False) -> list[str]:
    """``record`` for several entries (a group commit's posts, each ``actor``/``action``/``subject``/``data``):
    one lock, one read of the parent and one insert for all, chained in list order; returns their hashes.

    On SQLite without ``holds_write_lock`` the entries are recorded one by one (``record`` takes the
    write lock with its first insert); that path only serves a group that wrote nothing else.
    """
    if not entries:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres and not holds_write_lock:
        return [record(session, **entry) for entry in entries]
    if postgres:
        session.execute(_PG_LOCK_SQL, {"k": _PG_LOCK})
    prev = session.execute(_LAST).scalar() or GENESIS
    at, rows, hashes = utcnow(), [], []
    for entry in entries:
        data = entry.get("data") or {}
        row = {"at": at, "actor": entry["actor"][:200], "action": entry["action"][:100],
               "subject": entry.get("subject", "")[:200], "data": data, "prev_hash": prev}
        prev = row["hash"] = digest(prev_hash=prev, at=at, actor=row["actor"], action=row["action"],
                                    subject=row["subject"], data=data)
        rows.append(row)
        hashes.append(prev)
    if postgres and len(rows) > 1:  # one statement with one JSON parameter, rows (and ids) in list order
        session.execute(_pg_insert_many(), {"rows": json_rows(rows)})
    else:
        session.execute(_INSERT, rows if len(rows) > 1 else rows[0])  # SQLite: one executemany, ids in order
    return hashes


# built once: this runs on every ingest, and building statements costs more than running them on SQLite
_TABLE = cast(Table, AuditEntry.__table__)
_PG_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:k)")
_LAST = select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_LAST_BEFORE = select(_TABLE.c.hash).where(_TABLE.c.id < bindparam("before")).order_by(_TABLE.c.id.desc()).limit(1)
_INSERT = insert(_TABLE)
_INSERT_RETURNING = insert(_TABLE).returning(_TABLE.c.id)
_COLUMNS = ("at", "actor", "action", "subject", "data", "prev_hash", "hash")
_LINK = (update(_TABLE).where(_TABLE.c.id == bindparam("entry"))
         .values(prev_hash=bindparam("new_prev"), hash=bindparam("new_hash")))


@cache
def _pg_insert_many() -> Any:
    return recordset_insert(_TABLE, _COLUMNS, "")


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
