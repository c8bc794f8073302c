"""SQLAlchemy base, engine and sessions shared by every domain's ``models.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Engine, Executable, MetaData, create_engine, event
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def rows_matched(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE; the rows it matched. A compare-and-set claim is ours when this is 1."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult), "rows_matched runs UPDATE / DELETE statements"
    return result.rowcount or 0


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend: SQLite keeps no zone and would hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict: JSON, list: JSON, datetime: UTCDateTime()}


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Engine with the settings each backend needs to be shared by API threads and worker processes."""
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


_engines: dict[str, tuple[Engine, sessionmaker[Session]]] = {}
_engines_lock = threading.Lock()


def _pooled(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """One connection pool per database URL and process (a pool is what a process should share)."""
    with _engines_lock:
        if url not in _engines:
            engine = make_engine(url)
            _engines[url] = (engine, sessionmaker(engine, expire_on_commit=False))
        return _engines[url]


def engine_for(url: str) -> Engine:
    return _pooled(url)[0]


def dispose(url: str) -> None:
    """Close this process's pool for ``url`` (before the database is dropped or moved)."""
    with _engines_lock:
        entry = _engines.pop(url, None)
    if entry is not None:
        entry[0].dispose()


_sqlite_writers: dict[str, threading.Lock] = {}


def write_turn(url: str) -> AbstractContextManager[object]:
    """Hold around a write transaction that many threads of this process run at once (alert ingest).

    SQLite has one writer: threads that meet its lock sleep in its busy handler (1, 2, 5 ... 100 ms
    steps) and wake late, so concurrent ingest threads mostly slept. Here they queue on a Python lock
    instead and start the moment the previous transaction commits; other processes still meet the
    busy timeout. PostgreSQL has row locks: no turn to take.
    """
    if not url.startswith("sqlite"):
        return nullcontext()
    with _engines_lock:
        return _sqlite_writers.setdefault(url, threading.Lock())


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = _pooled(url)[1]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
