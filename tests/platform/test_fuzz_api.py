"""Fuzz every operation of the OpenAPI schema (schemathesis) and assert no 5xx, on SQLite and PostgreSQL.

Auth is off, so every route is reachable by the generated requests; the role matrix is checked
separately (test_authz.py). ``AIOPS_FUZZ_EXAMPLES`` raises the number of cases per operation.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from tests.conftest import install_settings
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.slow, pytest.mark.integration]
EXAMPLES = int(os.environ.get("AIOPS_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def no_worker_runs_the_fuzzed_tasks():
    """Generated bodies queue real work (a causal training on up to 200,000 simulated events, a drift
    reconcile): no worker takes it during the fuzz, and it is purged after. Before, an earlier test's
    embedded worker ran two dozen trainings in the background of the rest of the suite (minutes of CPU
    under the browser tests) and the test process's exit waited for the last ones."""
    from services.worker.celery_app import app
    from services.worker.embedded import stop_embedded_worker

    stop_embedded_worker()
    yield
    with app.connection_for_write() as conn:
        app.amqp.TaskConsumer(conn).purge()


def _schema(url: str, monkeypatch):
    from services.api.app import create_app
    from services.storage.migrate import upgrade

    monkeypatch.setenv("AIOPS_DATABASE_URL", url)
    install_settings()
    upgrade(url)
    app = create_app(start_workers=False)
    TestClient(app).__enter__()  # run the lifespan (migration check) once
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _fuzz(schema) -> tuple[int, list[str]]:
    """Every operation, ``EXAMPLES`` generated cases each; returns (requests sent, 5xx seen).

    Driven through hypothesis directly: schemathesis' pytest plugin does not load under pytest 9.
    """
    sent, failures = [0], []
    for result in schema.get_all_operations():
        _fuzz_operation(result.ok(), sent, failures)
    return sent[0], failures


def _fuzz_operation(operation, sent: list[int], failures: list[str]) -> None:
    from hypothesis import given

    @FUZZ
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call()
        sent[0] += 1
        if response.status_code >= 500:
            failures.append(f"{operation.method.upper()} {operation.path}: {response.status_code} "
                            f"{response.text[:200]} <- {case.path_parameters} {case.query} {str(case.body)[:200]}")

    run()


def test_no_5xx_on_sqlite(platform_env, monkeypatch):
    sent, failures = _fuzz(_schema(platform_env["AIOPS_DATABASE_URL"], monkeypatch))
    print(f"fuzz: {sent} generated requests, {len(failures)} 5xx")
    assert sent > 100
    assert not failures, "\n".join(failures[:20])


def test_no_5xx_on_postgres(platform_env, monkeypatch):
    with fresh_postgres("aiops_fuzz") as url:
        sent, failures = _fuzz(_schema(url, monkeypatch))
    print(f"fuzz: {sent} generated requests, {len(failures)} 5xx")
    assert sent > 100
    assert not failures, "\n".join(failures[:20])
