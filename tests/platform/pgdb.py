"""A throwaway PostgreSQL database on the shared server, for one test (never the shared ones)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.conftest import POSTGRES_URL


@contextmanager
def fresh_postgres(prefix: str = "aiops_safe") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from services.storage.base import _factory, engine_for

        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        try:
            engine_for(url).dispose()
        except Exception:
            pass
        engine_for.cache_clear()
        _factory.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
