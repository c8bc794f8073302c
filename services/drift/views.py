"""Drift proposals: list, inspect, review; reconcile now; workspace status."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.api.deps import MAX_PAGE, IdPath, SafeStr, app_settings, page_of
from services.audit.service import record
from services.auth.deps import require
from services.config import Settings
from services.drift.models import DriftProposal, IacWorkspaceState
from services.drift.service import (
    ProposalNotFound,
    WorkspaceNotFound,
    review,
    workspaces,
)
from services.storage.base import session_scope
from services.worker.queue import IAC_RECONCILE, enqueue

router = APIRouter(prefix="/api/v1/drift", tags=["drift"])


def _view(row: DriftProposal, *, full: bool = False) -> dict:
    out = {"id": row.id, "workspace": row.workspace, "status": row.status, "title": row.title, "diff": row.diff,
           "explanation": row.explanation, "instructions": row.instructions, "needs_person": row.needs_person,
           "verification": row.verification, "branch": row.branch, "reviewer": row.reviewer,
           "review_comment": row.review_comment, "created_at": row.created_at.isoformat(),
           "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None}
    if full:
        out["records"] = row.records
    return out


@router.get("/proposals", summary="Drift proposals, newest first")
def list_proposals(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings),
                   status: SafeStr | None = Query(None, max_length=32),
                   workspace: SafeStr | None = Query(None, max_length=200), page: int = Query(1, ge=1, le=MAX_PAGE),
                   per_page: int = Query(20, ge=1, le=200)) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(DriftProposal)
        if status:
            query = query.where(DriftProposal.status == status)
        if workspace:
            query = query.where(DriftProposal.workspace == workspace)
        return page_of(session, query, order_by=DriftProposal.id.desc(), page=page, per_page=per_page, view=_view)


@router.get("/proposals/{proposal_id}", summary="One proposal with the trace records behind it")
def get_proposal(proposal_id: IdPath, user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings)) -> dict:
    with session_scope(settings.database_url) as session:
        row = session.get(DriftProposal, proposal_id)
        if row is None:
            raise ProposalNotFound(f"drift proposal {proposal_id} does not exist")
        return _view(row, full=True)


class Review(BaseModel):
    approved: bool
    comment: SafeStr = Field(default="", max_length=2000, description="required when rejecting: why")


@router.post("/proposals/{proposal_id}/review", summary="Approve (commit to a new branch) or reject with a reason")
def review_route(proposal_id: IdPath, body: Review, user: str = Depends(require("approver")),
                 settings: Settings = Depends(app_settings)) -> dict:
    return _view(review(settings, proposal_id, approved=body.approved, reviewer=user, comment=body.comment))


class ReconcileRequest(BaseModel):
    workspace: SafeStr | None = Field(default=None, max_length=200, description="one workspace; default: all")


@router.post("/reconcile", status_code=202, summary="Reconcile now (queued on the iac queue)")
def reconcile_now(body: ReconcileRequest, user: str = Depends(require("operator")),
                  settings: Settings = Depends(app_settings)) -> dict:
    names = list(workspaces(settings))
    if body.workspace and body.workspace not in names:
        raise WorkspaceNotFound(f"no workspace named {body.workspace!r}; configured: {', '.join(names) or 'none'}")
    targets = [body.workspace] if body.workspace else names
    for name in targets:
        enqueue(IAC_RECONCILE, name, priority=5)
    with session_scope(settings.database_url) as session:
        record(session, actor=user, action="drift.reconcile", subject=body.workspace or "*", data={"queued": targets})
    return {"queued": targets}


@router.get("/workspaces", summary="Configured workspaces and their last reconciliation")
def list_workspaces(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings)) -> dict:
    with session_scope(settings.database_url) as session:
        states = {s.name: s for s in session.scalars(select(IacWorkspaceState))}
    items = []
    for name, ws in workspaces(settings).items():
        state = states.get(name)
        items.append({"name": name, "terraform_dir": str(ws.terraform_dir), "trace_source": ws.trace_source,
                      "watermark": state.watermark.isoformat() if state and state.watermark else None,
                      "last_run_at": state.last_run_at.isoformat() if state and state.last_run_at else None,
                      "last_result": state.last_result if state else {}})
    return {"items": items}
