"""Alert ingestion endpoints: Alertmanager, CloudWatch/SNS and generic webhooks all POST here."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import func, select

from services.alerts.models import Alert, AlertRead
from services.alerts.service import store_alerts
from services.api.deps import app_settings
from services.audit.service import record
from services.auth.service import current_user
from services.config import Settings
from services.incidents import flows
from services.incidents.models import Incident
from services.ingest.normalize import normalize
from services.storage.base import session_scope

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
MAX_BODY = 5 * 1024 * 1024


@router.post("", status_code=202, summary="Ingest alerts (Alertmanager v4, CloudWatch/SNS, generic JSON)")
async def ingest(request: Request, user: str = Depends(current_user), settings: Settings = Depends(app_settings)) -> dict:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"payload of {len(body)} bytes exceeds {MAX_BODY} bytes")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None
    alerts = normalize(payload)  # IngestError -> 422 problem+json, nothing stored
    from services.api.health import ALERTS_INGESTED

    ALERTS_INGESTED.inc(len(alerts))
    with session_scope(settings.database_url) as session:
        result = store_alerts(session, alerts, group_window_s=settings.incident_group_window_s)
        record(session, actor=user, action="alerts.ingest", data=result.to_dict())
        opened = session.scalars(select(Incident).where(Incident.id.in_(result.incidents_opened))
                                 .order_by(Incident.id)).all()
    failed = flows.dispatch(opened, settings=settings)
    if result.resolved:
        try:
            flows.note_resolved(result.resolved, settings=settings)
        except Exception:  # the resolution is stored; the actor still sees it through the store before acting
            log.exception("could not hand resolved alerts %s to their incidents", result.resolved)
    flows.notify_opened(opened, settings=settings)
    return {"accepted": len(alerts), **result.to_dict(),
            "queued": [i for i in result.incidents_opened if i not in failed]}


@router.get("", summary="List alerts, newest first")
def list_alerts(
    settings: Settings = Depends(app_settings),
    status: str | None = None,
    page: int = Query(1, ge=1),
    per_page: int = Query(50, ge=1, le=500),
) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(Alert)
        if status:
            query = query.where(Alert.status == status)
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(Alert.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
        return {"total": total, "page": page, "per_page": per_page,
                "items": [AlertRead.model_validate(r).model_dump(mode="json") for r in rows]}
