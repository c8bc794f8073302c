"""Reading the audit log (approvers and admins) and checking its hash chain (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from services.api.deps import MAX_PAGE, SafeStr, app_settings, page_of
from services.audit.models import AuditEntry
from services.audit.service import entry_dict, verify_chain
from services.auth.deps import require
from services.config import Settings
from services.storage.base import session_scope

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", summary="Audit log, newest first")
def list_audit(user: str = Depends(require("approver")), settings: Settings = Depends(app_settings),
               action: SafeStr | None = Query(None, max_length=100), actor: SafeStr | None = Query(None, max_length=200),
               page: int = Query(1, ge=1, le=MAX_PAGE), per_page: int = Query(50, ge=1, le=500)) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(AuditEntry)
        if action:
            query = query.where(AuditEntry.action == action)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        return page_of(session, query, order_by=AuditEntry.id.desc(), page=page, per_page=per_page, view=entry_dict)


@router.get("/verify", summary="Recompute the hash chain; reports the first entry that was changed")
def verify(user: str = Depends(require("admin")), settings: Settings = Depends(app_settings)) -> dict:
    with session_scope(settings.database_url) as session:
        return verify_chain(session).to_dict()
