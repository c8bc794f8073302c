"""Exactly one incident per group, and one alert per fingerprint, with two API processes on one
PostgreSQL: the same new groups posted concurrently to both, counted in the database afterwards."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.platform.apiprocs import api_env, drop_broker_keys, post_all, start_api, stop
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GROUPS = 300


def test_two_api_processes_open_one_incident_per_group(tmp_path, moto_endpoint):
    from services.alerts.models import Alert
    from services.incidents.models import Incident
    from services.storage.base import session_scope
    from services.storage.migrate import upgrade

    prefix = f"aiops-safe-{uuid.uuid4().hex[:8]}:"
    with fresh_postgres("aiops_two_api") as url:
        upgrade(url)
        env = api_env(database_url=url, moto_endpoint=moto_endpoint, workdir=tmp_path, prefix=prefix)
        procs = []
        try:
            for i in range(2):
                proc, base = start_api(env=env, workdir=tmp_path / f"api{i}", name=f"api{i}")
                procs.append((proc, base))
            bases = [b for _, b in procs]
            bodies = []
            for g in range(GROUPS):  # each group: the same alert to both, and a second alert of the group to both
                for name in ("A", "B"):
                    body = {"name": name, "node": f"node-{g}", "severity": "high"}
                    bodies += [(0, body), (1, body)]
            statuses = post_all(bases, bodies)
        finally:
            for proc, _ in procs:
                stop(proc)
            drop_broker_keys(prefix)
        assert statuses.count(202) == len(bodies), {s: statuses.count(s) for s in set(statuses)}
        with session_scope(url) as session:
            incidents = session.scalar(select(func.count(Incident.id)))
            per_group = session.execute(select(Incident.group_key, func.count()).group_by(Incident.group_key)
                                        .having(func.count() > 1)).all()
            alerts = session.scalar(select(func.count(Alert.id)))
            received = session.scalar(select(func.sum(Alert.count)))
            unattached = session.scalar(select(func.count(Alert.id)).where(Alert.incident_id.is_(None)))
        assert per_group == [] and incidents == GROUPS
        assert alerts == 2 * GROUPS and received == 4 * GROUPS and unattached == 0
