"""Integrations routes: the webhook outbox (deliveries, dead letters, redelivery), silences, Slack buttons and /aiops."""

from __future__ import annotations

import json
from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from services.api.deps import MAX_PAGE, IdPath, app_settings, page_of
from services.audit.service import record
from services.auth.deps import require
from services.config import Settings
from services.notify import slack, slack_commands
from services.notify.models import DeliveryRead, Silence, SilenceCreate, SilenceRead, WebhookDelivery
from services.notify.service import SlackVerificationError, create_silence, expire_silence, redeliver, verify_slack
from services.storage.base import session_scope, utcnow

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])


async def _verified_slack_form(request: Request, settings: Settings) -> dict[str, str]:
    """The form fields of a request Slack signed (v0 scheme, slack-sdk's verifier); 401 for anything else."""
    if not settings.slack_signing_secret:
        raise HTTPException(404, "Slack requests are not configured (AIOPS_SLACK_SIGNING_SECRET)")
    body = await request.body()
    try:
        verify_slack(body, timestamp=request.headers.get("x-slack-request-timestamp"),
                     signature=request.headers.get("x-slack-signature"), secret=settings.slack_signing_secret)
    except SlackVerificationError as exc:
        raise HTTPException(401, f"Slack signature check failed: {exc}") from None
    try:
        return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise HTTPException(400, "not a form-encoded Slack request") from None


@router.post("/slack/interactions", summary="Slack interactivity endpoint (approval buttons)")
async def slack_interactions(request: Request, background: BackgroundTasks, caller: str = Depends(require("public")),
                             settings: Settings = Depends(app_settings)) -> dict:
    form = await _verified_slack_form(request, settings)
    try:
        payload = json.loads(form["payload"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"not a Slack block_actions payload: {exc}") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "not a Slack block_actions payload: payload is not an object")
    text, where = await run_in_threadpool(slack_commands.click, settings, payload)  # bad payload -> 422
    if where:  # the buttons are replaced by who decided (after the answer: Slack wants one within 3 s)
        background.add_task(slack.mark_decided, settings, channel=where.get("channel"), ts=where.get("ts"), text=text)
    return {"text": text}


@router.post("/slack/commands", summary="Slack slash command /aiops (status, ack, approve, reject)")
async def slack_command(request: Request, caller: str = Depends(require("public")),
                        settings: Settings = Depends(app_settings)) -> dict:
    form = await _verified_slack_form(request, settings)
    return await run_in_threadpool(slack_commands.run_command, settings, text=form.get("text", ""),
                                   user_id=form.get("user_id"), user_name=form.get("user_name"))


@router.get("/webhooks/deliveries", summary="Outbox deliveries, newest first; status=dead lists the dead letters")
def list_deliveries(
    user: str = Depends(require("viewer")),
    settings: Settings = Depends(app_settings),
    status: Literal["pending", "delivered", "dead", "silenced"] | None = Query(None),
    event_id: str | None = Query(None, max_length=64, pattern=r"^[0-9a-fA-F-]+$"),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(50, ge=1, le=500),
) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(WebhookDelivery)
        if status:
            query = query.where(WebhookDelivery.status == status)
        if event_id:
            query = query.where(WebhookDelivery.event_id == event_id)
        return page_of(session, query, order_by=WebhookDelivery.id.desc(), page=page, per_page=per_page,
                       view=lambda r: DeliveryRead.model_validate(r).model_dump(mode="json"))


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", status_code=202,
             summary="Send a dead-lettered (or delivered) event to its destination again, same event id")
def redeliver_delivery(delivery_id: IdPath, user: str = Depends(require("operator")),
                       settings: Settings = Depends(app_settings)) -> dict:
    row = redeliver(settings, delivery_id=delivery_id)  # NotFound -> 404, already pending -> 409
    with session_scope(settings.database_url) as session:
        record(session, actor=user, action="webhooks.redeliver", subject=str(delivery_id),
               data={"event_id": row.event_id, "destination": row.destination})
    return DeliveryRead.model_validate(row).model_dump(mode="json")


@router.post("/silences", status_code=201, response_model=SilenceRead,
             summary="Mute notifications whose labels match (kind, severity, service, node, cluster, status)")
def create_silence_route(body: SilenceCreate, user: str = Depends(require("operator")),
                         settings: Settings = Depends(app_settings)) -> SilenceRead:
    with session_scope(settings.database_url) as session:
        silence = create_silence(session, matchers=body.matchers, duration_s=body.duration_s,
                                 starts_at=body.starts_at, comment=body.comment, user=user)  # bad matcher -> 422
        record(session, actor=user, action="silences.create", subject=str(silence.id),
               data={"matchers": silence.matchers, "ends_at": silence.ends_at.isoformat()})
        return SilenceRead.model_validate(silence)


@router.get("/silences", summary="Silences, newest first; active=true for the ones in force now")
def list_silences(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings),
                  active: bool = Query(False), page: int = Query(1, ge=1, le=MAX_PAGE),
                  per_page: int = Query(50, ge=1, le=500)) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(Silence)
        if active:
            now = utcnow()
            query = query.where(Silence.starts_at <= now, Silence.ends_at > now)
        return page_of(session, query, order_by=Silence.id.desc(), page=page, per_page=per_page,
                       view=lambda r: SilenceRead.model_validate(r).model_dump(mode="json"))


@router.delete("/silences/{silence_id}", response_model=SilenceRead, summary="End a silence now")
def expire_silence_route(silence_id: IdPath, user: str = Depends(require("operator")),
                         settings: Settings = Depends(app_settings)) -> SilenceRead:
    with session_scope(settings.database_url) as session:
        silence = expire_silence(session, silence_id=silence_id)  # NotFound -> 404, already over -> 409
        record(session, actor=user, action="silences.expire", subject=str(silence_id), data={})
        return SilenceRead.model_validate(silence)
