"""Periodic incident jobs (run by beat through ``services.worker.tasks``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.alerts.models import Alert
from services.config import Settings
from services.incidents.flows import graph_started, resume_stalled
from services.incidents.models import Incident
from services.incidents.service import attach_alert
from services.storage.base import session_scope, utcnow
from services.worker.queue import OBSERVE, enqueue

# an act stage with no progress for this long lost its (maybe delayed) task: verification re-checks are
# seconds apart and the verify deadline is minutes, so this is well past any legitimate wait
STALLED_AFTER_S = 600.0


def redispatch_stranded(settings: Settings, *, older_than_s: float = 30.0) -> int:
    """Re-send stranded work: alerts stored while the broker was down, incidents whose graph never started,
    act stages whose (delayed) task was lost.

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
    stalled_before = utcnow() - timedelta(seconds=max(older_than_s, STALLED_AFTER_S))
    with session_scope(settings.database_url) as session:
        stalled = session.scalars(select(Incident.id).where(Incident.status.in_(("mitigating", "verifying")),
                                                            Incident.updated_at <= stalled_before)).all()
    resent = sum(1 for incident_id in stalled if resume_stalled(incident_id))
    return len(incident_ids) + resent
