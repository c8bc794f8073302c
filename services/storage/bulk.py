"""Many rows in one statement with one JSON parameter, on PostgreSQL (``json_to_recordset``) and SQLite
(``json_each``).

WHY: an ``executemany`` or a multi-row ``VALUES`` binds every cell through its column type in Python
and, past 50 parameters, psycopg re-parses the SQL text each time; one JSON parameter keeps the
statement text fixed (prepared once) and the encoding in C (orjson). The ingest and the audit log
write their rows this way.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_rows(rows: list[dict]) -> str:
    """Rows as one JSON array for ``json_to_recordset`` (orjson when installed: a third of the CPU of ``json``)."""
    if _orjson is not None:
        return _orjson.dumps(rows).decode()
    return json.dumps(rows, default=_iso)


_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - a dependency of chromadb and langsmith, so normally present
    _orjson = None


def recordset_insert(table: Any, wanted: tuple[str, ...], suffix: str) -> Any:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    columns = [c for c in table.c if c.name in wanted]
    names = ", ".join(f'"{c.name}"' for c in columns)
    shape = ", ".join(f'"{c.name}" {c.type.compile(dialect=dialect)}' for c in columns)
    return text(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM json_to_recordset(CAST(:rows AS json)) "
                f"AS r({shape}){suffix}")


def sqlite_has_json() -> bool:
    import sqlite3

    return sqlite3.sqlite_version_info >= (3, 38)  # the -> and ->> operators


def sqlite_json_rows(rows: list[dict]) -> str:
    """Rows as one JSON array for ``json_each``, datetimes already in SQLAlchemy's SQLite storage format
    (``YYYY-MM-DD HH:MM:SS.ffffff``, the value's own fields, as its DATETIME type writes them)."""
    times: dict[tuple[datetime, Any], str] = {}  # mostly the same few values (the ingest's now): formatted once

    def text(v: datetime) -> str:
        key = (v, v.utcoffset())  # equal instants in two zones are two texts (the value's own fields)
        if key not in times:
            times[key] = v.replace(tzinfo=None).isoformat(" ", "microseconds")
        return times[key]

    return json_rows([{k: (text(v) if isinstance(v, datetime) else v) for k, v in row.items()} for row in rows])


def sqlite_recordset_insert(table: Any, wanted: tuple[str, ...], suffix: str) -> Any:
    """SQLite: ``INSERT ... SELECT`` from one JSON array parameter (``json_each``), like ``recordset_insert``.

    WHY: an ``executemany`` binds every cell through its column type in Python (JSON columns through
    ``json.dumps``, datetimes through string formatting): on SQLite that was most of an ingest's CPU.
    JSON columns take ``->`` (the value's JSON text, ``null`` for null, as the JSON type stores it), the
    others ``->>`` (the SQL value: text, integer, boolean as 0/1, NULL).
    """
    from sqlalchemy import JSON

    columns = [c for c in table.c if c.name in wanted]
    names = ", ".join(f'"{c.name}"' for c in columns)
    values = ", ".join(f"""value {'->' if isinstance(c.type, JSON) else '->>'} '$.{c.name}'""" for c in columns)
    # "WHERE true": SQLite's grammar needs it between INSERT ... SELECT and an upsert clause
    return text(f"INSERT INTO {table.name} ({names}) SELECT {values} FROM json_each(:rows) WHERE true{suffix}")
