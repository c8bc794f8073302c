"""Periodic incident jobs (run by beat through ``services.worker.tasks``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.alerts.models import Alert
from services.config import Settings
from services.incidents.flows import graph_started
from services.incidents.models import Incident
from services.incidents.service import attach_alert
from services.storage.base import session_scope, utcnow
from services.worker.queue import OBSERVE, enqueue


def redispatch_stranded(settings: Settings, *, older_than_s: float = 30.0) -> int:
    """Re-send stranded work: alerts stored while the broker was down, incidents whose graph never started.

    Returns how many incidents were sent to the observer again.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with session_scope(settings.database_url) as session:
        incident_ids = set()
        for alert in session.scalars(select(Alert).where(Alert.dispatched.is_(False), Alert.status == "firing",
                                                         Alert.received_at <= cutoff)):
            incident, _ = attach_alert(session, alert, window_s=settings.incident_group_window_s, priority=5)
            alert.dispatched = True
            incident_ids.add(incident.id)
        stale = session.scalars(select(Incident.id).where(Incident.status == "open",
                                                          Incident.opened_at <= cutoff)).all()
    for incident_id in stale:  # opened but the observer never ran (lost message)
        if not graph_started(incident_id):
            incident_ids.add(incident_id)
    for incident_id in sorted(incident_ids):
        enqueue(OBSERVE, incident_id, priority=4)
    return len(incident_ids)
