"""One incident per fault with two API processes on one PostgreSQL: two alerts of one fault, in two
groups (a service alert, and an alert naming the service and its node), posted to both processes at
once; correlation must join them under one parent, never open two."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.platform.apiprocs import api_env, drop_broker_keys, post_all, start_api, stop
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FAULTS = 100


def test_two_api_processes_open_one_incident_per_fault(tmp_path, moto_endpoint):
    from services.alerts.models import Alert
    from services.incidents.models import Incident, TimelineEvent
    from services.storage.base import session_scope
    from services.storage.migrate import upgrade

    prefix = f"aiops-corr-{uuid.uuid4().hex[:8]}:"
    with fresh_postgres("aiops_corr_api") as url:
        upgrade(url)
        env = api_env(database_url=url, moto_endpoint=moto_endpoint, workdir=tmp_path, prefix=prefix)
        procs = []
        try:
            for i in range(2):
                procs.append(start_api(env=env, workdir=tmp_path / f"api{i}", name=f"api{i}"))
            bases = [b for _, b in procs]
            bodies = []
            for f in range(FAULTS):  # group "service:svc-f" and group "node:node-f" share the component svc-f
                service = {"name": "HighErrorRate", "service": f"svc-{f}", "severity": "critical"}
                both = {"name": "HighLatency", "service": f"svc-{f}", "node": f"node-{f}", "severity": "warning"}
                bodies += [(0, service), (1, both)] if f % 2 else [(1, service), (0, both)]
            statuses = post_all(bases, bodies)
        finally:
            for proc, _ in procs:
                stop(proc)
            drop_broker_keys(prefix)
        assert statuses.count(202) == len(bodies), {s: statuses.count(s) for s in set(statuses)}
        with session_scope(url) as session:
            incidents = session.scalar(select(func.count(Incident.id)))
            per_fault = session.execute(select(func.count(func.distinct(Alert.incident_id)))
                                        .group_by(Alert.service).having(func.count(func.distinct(Alert.incident_id)) > 1)).all()
            correlated = session.scalar(select(func.count(TimelineEvent.id)).where(TimelineEvent.kind == "correlated"))
            unattached = session.scalar(select(func.count(Alert.id)).where(Alert.incident_id.is_(None)))
        assert per_fault == [] and incidents == FAULTS and unattached == 0
        assert correlated == FAULTS  # every second group of a fault joined with its reason
