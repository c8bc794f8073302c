"""Incident and approval routes used by the console, the CLI and Slack interactivity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.actions.models import Action, Approval
from services.audit.service import record
from services.auth.service import current_user
from services.config import Settings, get_settings
from services.incidents.models import (
    Hypothesis,
    HypothesisRead,
    Incident,
    IncidentDetail,
    IncidentRead,
    TimelineEvent,
    TimelineRead,
)
from services.storage.base import session_scope, utcnow

router = APIRouter(prefix="/api/v1", tags=["incidents"])


def _approval_dict(a: Approval) -> dict:
    return {"id": a.id, "action": a.action_kind, "target": a.target, "risk": a.risk, "reason": a.reason,
            "status": a.status, "decided_by": a.decided_by, "comment": a.comment,
            "created_at": a.created_at.isoformat(), "decided_at": a.decided_at.isoformat() if a.decided_at else None}


@router.get("/incidents", summary="List incidents, newest first, with paging")
def list_incidents(
    settings: Settings = Depends(get_settings),
    status: str | None = Query(None, description="open | resolved | escalated | ... ; 'active' = not closed"),
    page: int = Query(1, ge=1),
    per_page: int = Query(25, ge=1, le=200),
) -> dict:
    from services.incidents.models import OPEN_STATUSES

    with session_scope(settings.database_url) as session:
        query = select(Incident)
        if status == "active":
            query = query.where(Incident.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(Incident.status == status)
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(Incident.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
        return {"total": total, "page": page, "per_page": per_page,
                "items": [IncidentRead.model_validate(r).model_dump(mode="json") for r in rows]}


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, summary="One incident with its timeline")
def get_incident(incident_id: int, settings: Settings = Depends(get_settings)) -> IncidentDetail:
    with session_scope(settings.database_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise HTTPException(404, f"incident {incident_id} does not exist")
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
            approvals=[_approval_dict(a) for a in approvals],
            actions=[{"id": a.id, "kind": a.kind, "target": a.target, "risk": a.risk, "status": a.status,
                      "result": a.result, "started_at": a.started_at.isoformat()} for a in actions],
        )


@router.get("/approvals", summary="Approvals, pending first")
def list_approvals(settings: Settings = Depends(get_settings), status: str | None = "pending") -> dict:
    with session_scope(settings.database_url) as session:
        query = select(Approval)
        if status:
            query = query.where(Approval.status == status)
        rows = session.scalars(query.order_by(Approval.id.desc()).limit(200)).all()
        return {"items": [{**_approval_dict(a), "incident_id": a.incident_id} for a in rows]}


class Decision(BaseModel):
    approved: bool
    comment: str = Field(default="", max_length=2000)


def decide(database_url: str, approval_id: int, *, approved: bool, user: str, comment: str = "") -> dict:
    """Record an operator's decision once and resume the paused actor with it."""
    from services.worker import tasks

    with session_scope(database_url) as session:
        approval = session.get(Approval, approval_id)
        if approval is None:
            raise HTTPException(404, f"approval {approval_id} does not exist")
        if approval.status != "pending":
            raise HTTPException(409, f"approval {approval_id} was already {approval.status} by {approval.decided_by}")
        approval.status = "approved" if approved else "rejected"
        approval.decided_by, approval.decided_at, approval.comment = user, utcnow(), comment
        record(session, actor=user, action=f"approval.{approval.status}", subject=f"approval:{approval_id}",
               data={"incident_id": approval.incident_id, "action": approval.action_kind, "target": approval.target})
        incident_id, result = approval.incident_id, _approval_dict(approval)
    tasks.send(tasks.act, incident_id, priority=1, resume={"approved": approved, "by": user, "comment": comment})
    return result


@router.post("/approvals/{approval_id}/decision", summary="Approve or reject a pending mitigation")
def decide_route(approval_id: int, body: Decision, user: str = Depends(current_user),
                 settings: Settings = Depends(get_settings)) -> dict:
    return decide(settings.database_url, approval_id, approved=body.approved, user=user, comment=body.comment)
