"""Periodic notification jobs: the outbox sweep's companion that pages approvals waiting too long.

Run by the ``aiops.notify.sweep`` task (beat in distributed mode, the embedded sweeper otherwise).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from services.actions.models import Approval
from services.config import Settings
from services.incidents.models import Incident
from services.notify.models import WebhookDelivery
from services.notify.pagerduty import waiting_event_id
from services.notify.service import kick, stage_event
from services.storage.base import session_scope, utcnow


def page_waiting_approvals(settings: Settings, *, now: Any = None) -> list[int]:
    """Stage an ``approval_waiting`` page for each approval pending longer than the setting; returns outbox ids.

    Runs with the outbox sweep (beat, or the embedded sweeper). The event id is derived from the
    approval, and the outbox is unique on (event id, destination), so each approval pages once.
    """
    if not settings.pagerduty_routing_key and not any(r.get("pagerduty_routing_key") for r in settings.notify_routes):
        return []
    if settings.page_after_approval_wait_s <= 0:
        return []
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.page_after_approval_wait_s)
    staged: list[int] = []
    with session_scope(settings.database_url) as session:
        waiting = session.scalars(select(Approval).where(Approval.status == "pending", Approval.created_at <= cutoff)
                                  .order_by(Approval.id).limit(200)).all()
        for approval in waiting:
            event_id = waiting_event_id(approval.id)
            if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.event_id == event_id).limit(1)):
                continue
            incident = session.get(Incident, approval.incident_id)
            waited = int((now - approval.created_at).total_seconds())
            staged += stage_event(
                session, settings, incident_id=approval.incident_id, kind="approval_waiting", event_id=event_id,
                title=incident.title if incident else f"incident {approval.incident_id}",
                message=f"approval {approval.id} ({approval.action_kind} on {approval.target}, risk {approval.risk}) "
                        f"has waited {waited} s",
                data={"approval_id": approval.id, "action": approval.action_kind, "target": approval.target,
                      "waited_s": waited})
    kick(staged)
    return staged
