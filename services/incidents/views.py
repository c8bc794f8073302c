"""Incident and approval routes used by the console, the CLI and Slack interactivity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.actions.models import Action, Approval
from services.api.deps import MAX_PAGE, IdPath, SafeStr, app_settings, page_of
from services.auth.deps import require
from services.config import Settings
from services.errors import NotFound
from services.incidents import flows
from services.incidents.models import (
    OPEN_STATUSES,
    Hypothesis,
    HypothesisRead,
    Incident,
    IncidentDetail,
    IncidentRead,
    TimelineEvent,
    TimelineRead,
)
from services.incidents.service import approval_dict
from services.storage.base import session_scope

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.get("/incidents", summary="List incidents, newest first, with paging")
def list_incidents(
    user: str = Depends(require("viewer")),
    settings: Settings = Depends(app_settings),
    status: SafeStr | None = Query(None, max_length=32, description="open | resolved | escalated | ... ; 'active' = not closed"),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(25, ge=1, le=200),
) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(Incident)
        if status == "active":
            query = query.where(Incident.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(Incident.status == status)
        return page_of(session, query, order_by=Incident.id.desc(), page=page, per_page=per_page,
                       view=lambda r: IncidentRead.model_validate(r).model_dump(mode="json"))


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, summary="One incident with its timeline")
def get_incident(incident_id: IdPath, user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings)) -> IncidentDetail:
    with session_scope(settings.database_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} does not exist")
        timeline = session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                   .order_by(TimelineEvent.at, TimelineEvent.id)).all()
        hypotheses = session.scalars(select(Hypothesis).where(Hypothesis.incident_id == incident_id)
                                     .order_by(Hypothesis.rank)).all()
        approvals = session.scalars(select(Approval).where(Approval.incident_id == incident_id)).all()
        actions = session.scalars(select(Action).where(Action.incident_id == incident_id)).all()
        return IncidentDetail(
            **IncidentRead.model_validate(incident).model_dump(),
            timeline=[TimelineRead.model_validate(t) for t in timeline],
            hypotheses=[HypothesisRead.model_validate(h) for h in hypotheses],
            approvals=[approval_dict(a) for a in approvals],
            actions=[{"id": a.id, "kind": a.kind, "target": a.target, "risk": a.risk, "status": a.status,
                      "result": a.result, "started_at": a.started_at.isoformat()} for a in actions],
        )


@router.get("/approvals", summary="Approvals, pending first")
def list_approvals(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings),
                   status: SafeStr | None = Query("pending", max_length=32)) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(Approval)
        if status:
            query = query.where(Approval.status == status)
        rows = session.scalars(query.order_by(Approval.id.desc()).limit(200)).all()
        return {"items": [{**approval_dict(a), "incident_id": a.incident_id} for a in rows]}


class Decision(BaseModel):
    approved: bool
    comment: SafeStr = Field(default="", max_length=2000)


@router.post("/approvals/{approval_id}/decision", summary="Approve or reject a pending mitigation")
def decide_route(approval_id: IdPath, body: Decision, user: str = Depends(require("approver")),
                 settings: Settings = Depends(app_settings)) -> dict:
    return flows.decide(settings, approval_id, approved=body.approved, user=user, comment=body.comment)
