"""Insert-or-update of one row in one statement, on SQLite and PostgreSQL alike.

WHY not select-then-insert: two processes doing that at once both see "absent" and one of them
fails on the primary key; ``INSERT ... ON CONFLICT DO UPDATE`` is atomic on both backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session


def upsert(session: Session, model: type, *, values: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert `values` into `model`'s table, or update the row whose `keys` columns match."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the platform runs on these two
        raise NotImplementedError(f"upsert on {dialect}")
    statement = insert(model).values(**values)
    updates = {name: statement.excluded[name] for name in values if name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates))


def insert_new(session: Session, model: type, *, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> int:
    """Insert the rows whose ``keys`` are not stored yet (a redelivered webhook, a retried export); the
    number inserted. Atomic per row on both backends, like ``upsert``."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the platform runs on these two
        raise NotImplementedError(f"insert on {dialect}")
    # counted from RETURNING: a multi-row insert's rowcount is -1 on psycopg
    statement = (insert(model).values(list(rows)).on_conflict_do_nothing(index_elements=list(keys))
                 .returning(getattr(model, keys[0])))
    return len(session.execute(statement).all())
