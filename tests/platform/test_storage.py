"""Migrations on SQLite and PostgreSQL, and the refusal to run on an unmigrated database."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from tests.conftest import POSTGRES_URL

PLATFORM_TABLES = {"alerts", "incidents", "incident_events", "hypotheses", "actions", "approvals",
                   "drift_proposals", "users", "api_tokens", "audit_log",
                   # shared state (0004): what several processes read lives in the database, not on disk
                   "mitigation_events", "causal_models", "causal_model_pointers", "beat_schedule_state"}


def _roundtrip(url: str) -> None:
    from services.storage.migrate import current_revision, downgrade, head_revision, upgrade

    upgrade(url)
    engine = create_engine(url)
    try:
        assert PLATFORM_TABLES <= set(inspect(engine).get_table_names())
        assert current_revision(url) == head_revision()
        downgrade(url, revision="base")
        assert not PLATFORM_TABLES & set(inspect(engine).get_table_names())
        upgrade(url)
        assert current_revision(url) == head_revision()
    finally:
        engine.dispose()


def test_migrations_on_sqlite(tmp_path):
    _roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.integration
def test_migrations_on_postgres():
    name = f"aiops_mig_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _roundtrip(POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_app_refuses_unmigrated_database(tmp_path, monkeypatch):
    from services.api.app import create_app
    from services.config import Settings
    from services.storage.migrate import NotMigratedError

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(NotMigratedError, match="run `aiops migrate`"):
        with TestClient(create_app(settings, start_workers=False)):
            pass
