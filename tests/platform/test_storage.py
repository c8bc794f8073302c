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


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_same_fault_on_two_components_is_two_hypotheses(backend, tmp_path):
    """A diagnosis may blame cpu_saturation on a service and on its node; both are stored, ranked."""
    from contextlib import nullcontext

    from services.config import Settings
    from services.incidents.models import Incident
    from services.incidents.service import SqlIncidentStore
    from services.storage.base import session_scope
    from services.storage.migrate import upgrade
    from tests.platform.pgdb import fresh_postgres

    where = fresh_postgres("aiops_hyp") if backend == "postgres" else nullcontext(f"sqlite:///{tmp_path / 'h.db'}")
    with where as url:
        upgrade(url)
        with session_scope(url) as session:
            incident = Incident(title="t", severity="high", group_key="g")
            session.add(incident)
            session.flush()
            incident_id = incident.id
        store = SqlIncidentStore(Settings(database_url=url))
        ranked = [{"root_cause": "cpu_saturation", "component": "catalog", "confidence": 0.5},
                  {"root_cause": "cpu_saturation", "component": "node-4", "component_kind": "node", "confidence": 0.4},
                  {"root_cause": "cpu_saturation", "component": "catalog", "confidence": 0.1}]
        store.save_hypotheses(incident_id, ranked)
        store.save_hypotheses(incident_id, ranked[:2])  # a second diagnosis round replaces the first
        from sqlalchemy import select

        from services.incidents.models import Hypothesis

        with session_scope(url) as session:
            rows = session.execute(select(Hypothesis.component, Hypothesis.rank, Hypothesis.component_kind)
                                   .where(Hypothesis.incident_id == incident_id).order_by(Hypothesis.rank)).all()
        assert [tuple(r) for r in rows] == [("catalog", 0, None), ("node-4", 1, "node")]
