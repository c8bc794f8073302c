"""Insert-or-update of one row in one statement, on SQLite and PostgreSQL alike.

WHY not select-then-insert: two processes doing that at once both see "absent" and one of them
fails on the primary key; ``INSERT ... ON CONFLICT DO UPDATE`` is atomic on both backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The ``insert`` of a backend (``session.get_bind().dialect.name``): the one with ``ON CONFLICT``
    (PostgreSQL and SQLite spell it alike, but each dialect has its own construct)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql
        return postgresql.insert
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite
        return sqlite.insert
    raise NotImplementedError(f"insert ... on conflict on {dialect}")  # pragma: no cover - the platform runs on these two


def upsert(session: Session, model: type, *, values: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert `values` into `model`'s table, or update the row whose `keys` columns match."""
    statement = dialect_insert(session.get_bind().dialect.name)(model).values(**values)
    updates = {name: statement.excluded[name] for name in values if name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates))


def insert_new(session: Session, model: type, *, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> int:
    """Insert the rows whose ``keys`` are not stored yet (a redelivered webhook, a retried export); the
    number inserted. Atomic per row on both backends, like ``upsert``."""
    if not rows:
        return 0
    insert = dialect_insert(session.get_bind().dialect.name)
    # counted from RETURNING: a multi-row insert's rowcount is -1 on psycopg
    statement = (insert(model).values(list(rows)).on_conflict_do_nothing(index_elements=list(keys))
                 .returning(getattr(model, keys[0])))
    return len(session.execute(statement).all())
