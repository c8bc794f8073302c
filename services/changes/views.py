"""Change-event endpoints: CI/CD tools post deploys here; diagnosis reads them back as recent changes."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from services.alerts.views import read_body
from services.api.deps import SafeStr, app_settings
from services.audit.service import record
from services.auth.deps import require
from services.changes.normalize import normalize
from services.changes.service import recent_changes, store_changes
from services.config import Settings
from services.ingest.safejson import JsonRejected, parse_json
from services.storage.base import session_scope

router = APIRouter(prefix="/api/v1/changes", tags=["changes"])
MAX_BODY = 1024 * 1024


def _ingest(body: bytes, *, user: str, settings: Settings, github_event: str | None) -> dict:
    try:
        payload = parse_json(body)
    except JsonRejected as exc:
        raise HTTPException(exc.status, str(exc)) from None
    changes = normalize(payload, github_event=github_event)  # Invalid -> 422 problem+json, nothing stored
    with session_scope(settings.database_url) as session:
        result = store_changes(session, changes)
        record(session, actor=user, action="changes.ingest", data=result)
    return result


@router.post("", status_code=202, summary="Record change events (generic JSON, GitHub deployment, Argo CD)")
async def ingest(request: Request, user: str = Depends(require("operator")),
                 settings: Settings = Depends(app_settings)) -> dict:
    body = await read_body(request, limit=min(MAX_BODY, settings.max_body_bytes))
    return await run_in_threadpool(_ingest, body, user=user, settings=settings,
                                   github_event=request.headers.get("x-github-event"))


@router.post("/github", status_code=202, summary="GitHub deployment / deployment_status webhook (signed)")
async def github(request: Request, caller: str = Depends(require("public")),
                 settings: Settings = Depends(app_settings)) -> dict:
    """GitHub cannot send a bearer token: the body's HMAC (``X-Hub-Signature-256``) under
    ``AIOPS_GITHUB_WEBHOOK_SECRET`` is the credential."""
    if not settings.github_webhook_secret:
        # off until configured: 404, as for a route that is not there (a 5xx would page someone for nothing)
        raise HTTPException(404, "GitHub webhooks are off: set AIOPS_GITHUB_WEBHOOK_SECRET (the webhook's secret)")
    body = await read_body(request, limit=min(MAX_BODY, settings.max_body_bytes))
    sent = request.headers.get("x-hub-signature-256", "")
    wanted = "sha256=" + hmac.new(settings.github_webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sent, wanted):
        raise HTTPException(401, "X-Hub-Signature-256 is missing or does not match the body under the webhook secret")
    return await run_in_threadpool(_ingest, body, user="github", settings=settings,
                                   github_event=request.headers.get("x-github-event") or "deployment")


@router.get("", summary="Recent change events, newest first")
def list_changes(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings),
                 minutes: int = Query(60, ge=1, le=60 * 24 * 30), component: SafeStr | None = Query(None, max_length=300),
                 limit: int = Query(200, ge=1, le=1000)) -> dict:
    items = recent_changes(settings.database_url, minutes=minutes, component=component, limit=limit)
    return {"items": items, "minutes": minutes}
