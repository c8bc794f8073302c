"""Incident and approval routes used by the console, the CLI and Slack interactivity."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.actions.models import Action, Approval
from services.api.deps import MAX_PAGE, IdPath, SafeStr, app_settings, page_of
from services.auth.deps import require
from services.config import Settings
from services.errors import NotFound
from services.incidents import flows, service
from services.incidents.models import (
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
    q: SafeStr | None = Query(None, max_length=200, description="text in title, summary, root cause, service or node; or an id"),
    severity: SafeStr | None = Query(None, max_length=16),
    service_name: SafeStr | None = Query(None, alias="service", max_length=200),
    node: SafeStr | None = Query(None, max_length=200),
    since: SafeStr | None = Query(None, max_length=40, description="opened at or after: 24h, 7d, 90m, 2w ago or ISO 8601"),
    until: SafeStr | None = Query(None, max_length=40, description="opened before: relative or ISO 8601"),
    sort: Literal[service.SORTS] = Query("newest"),  # type: ignore[valid-type]
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(25, ge=1, le=200),
) -> dict:
    with session_scope(settings.database_url) as session:
        query = service.incident_query(q=q, status=status, severity=severity, service=service_name, node=node,
                                       since=service.parse_when(since), until=service.parse_when(until))
        order = service.incident_order(sort)
        return page_of(session, query, order_by=order, page=page, per_page=per_page,
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


class Assignment(BaseModel):
    assignee: SafeStr = Field(min_length=1, max_length=200)


class Reason(BaseModel):
    reason: SafeStr = Field(min_length=1, max_length=2000)


class CommentBody(BaseModel):
    text: SafeStr = Field(min_length=1, max_length=5000)


class SeverityBody(BaseModel):
    severity: Literal[service.SEVERITIES]  # type: ignore[valid-type]


@router.post("/incidents/{incident_id}/ack", summary="Acknowledge: someone is on it (timeline + audit log)")
def ack_route(incident_id: IdPath, user: str = Depends(require("operator")),
              settings: Settings = Depends(app_settings)) -> dict:
    return service.acknowledge(settings.database_url, incident_id, user=user, notify=settings)


@router.post("/incidents/{incident_id}/assign", summary="Give the incident an owner")
def assign_route(incident_id: IdPath, body: Assignment, user: str = Depends(require("operator")),
                 settings: Settings = Depends(app_settings)) -> dict:
    return service.assign(settings.database_url, incident_id, user=user, assignee=body.assignee, notify=settings)


@router.post("/incidents/{incident_id}/severity", summary="Change the severity")
def severity_route(incident_id: IdPath, body: SeverityBody, user: str = Depends(require("operator")),
                   settings: Settings = Depends(app_settings)) -> dict:
    return service.set_severity(settings.database_url, incident_id, user=user, severity=body.severity)


@router.post("/incidents/{incident_id}/resolve", summary="Resolve by hand, with a reason; pending approvals are cancelled")
def resolve_route(incident_id: IdPath, body: Reason, user: str = Depends(require("operator")),
                  settings: Settings = Depends(app_settings)) -> dict:
    return service.resolve_by_hand(settings.database_url, incident_id, user=user, reason=body.reason, notify=settings)


@router.post("/incidents/{incident_id}/reopen", summary="Reopen a closed incident, with a reason")
def reopen_route(incident_id: IdPath, body: Reason, user: str = Depends(require("operator")),
                 settings: Settings = Depends(app_settings)) -> dict:
    return service.reopen(settings.database_url, incident_id, user=user, reason=body.reason, notify=settings)


@router.post("/incidents/{incident_id}/comments", status_code=201, summary="Comment on the incident's timeline")
def comment_route(incident_id: IdPath, body: CommentBody, user: str = Depends(require("operator")),
                  settings: Settings = Depends(app_settings)) -> dict:
    return service.comment(settings.database_url, incident_id, user=user, text=body.text)


@router.get("/incidents/{incident_id}/postmortem", response_class=PlainTextResponse,
            summary="Postmortem draft in Markdown, from the timeline")
def postmortem_route(incident_id: IdPath, user: str = Depends(require("viewer")),
                     settings: Settings = Depends(app_settings)) -> PlainTextResponse:
    text = service.postmortem_markdown(settings.database_url, incident_id)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="incident-{incident_id}-postmortem.md"'})
