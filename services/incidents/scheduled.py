"""Periodic incident jobs (run by beat through ``services.worker.tasks``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import false, select

from services.alerts.models import Alert
from services.config import Settings
from services.incidents.dispatch import drain
from services.incidents.flows import graph_started, resume_stalled
from services.incidents.models import Incident
from services.incidents.service import attach_alert
from services.storage.base import session_scope, utcnow
from services.worker.queue import OBSERVE, enqueue

# an act stage with no progress for this long lost its (maybe delayed) task: verification re-checks are
# seconds apart and the verify deadline is minutes, so this is well past any legitimate wait
STALLED_AFTER_S = 600.0


def redispatch_stranded(settings: Settings, *, older_than_s: float = 30.0) -> int:
    """Re-send stranded work: the dispatch outbox (alerts whose new incident is not yet queued: no API
    dispatcher runs, or the broker was down), incidents whose graph never started, act stages whose
    (delayed) task was lost.

    Returns how many incidents were sent to the observer (again).
    """
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with session_scope(settings.database_url) as session:
        # alerts of older releases, stored without an incident: group them; the drain below sends them
        for alert in session.scalars(select(Alert).where(Alert.dispatched.is_(False), Alert.incident_id.is_(None),
                                                         Alert.status == "firing", Alert.received_at <= cutoff)):
            attach_alert(session, alert, window_s=settings.incident_group_window_s, priority=5)
    sent = set(drain(settings))  # claims rows: never the same row as an API process's dispatcher
    incident_ids = set()
    with session_scope(settings.database_url) as session:
        waiting = select(Alert.incident_id).where(Alert.dispatched == false(), Alert.incident_id.is_not(None))
        stale = session.scalars(select(Incident.id).where(Incident.status == "open", Incident.opened_at <= cutoff,
                                                          Incident.id.not_in(waiting))).all()
    for incident_id in stale:  # opened but the observer never ran (lost message)
        if incident_id not in sent and not graph_started(incident_id):
            incident_ids.add(incident_id)
    for incident_id in sorted(incident_ids):
        enqueue(OBSERVE, incident_id, priority=4)
    stalled_before = utcnow() - timedelta(seconds=max(older_than_s, STALLED_AFTER_S))
    with session_scope(settings.database_url) as session:
        stalled = session.scalars(select(Incident.id).where(Incident.status.in_(("mitigating", "verifying")),
                                                            Incident.updated_at <= stalled_before)).all()
    resent = sum(1 for incident_id in stalled if resume_stalled(incident_id))
    return len(sent) + len(incident_ids) + resent
