"""Alert ingestion endpoints: Alertmanager, CloudWatch/SNS and generic webhooks all POST here."""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from services.alerts.models import Alert, AlertRead, NormalizedAlert
from services.alerts.service import acknowledge_at_source, store_alerts
from services.api.deps import MAX_PAGE, SafeStr, app_settings, page_of
from services.audit.service import record
from services.auth.deps import require
from services.config import Settings
from services.incidents import dispatch, flows
from services.ingest.normalize import fingerprint, normalize
from services.ingest.pagerduty import SOURCE as PAGERDUTY
from services.ingest.pagerduty import parse_event
from services.ingest.safejson import JsonRejected, parse_json
from services.ingest.sns import (
    CertFetcher,
    SnsSignatureError,
    confirm_subscription,
    fetch_certificate,
    is_sns_message,
    is_subscription_message,
    verify_message,
)
from services.storage.base import session_scope, write_turn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
MAX_BODY = 5 * 1024 * 1024


async def read_body(request: Request, *, limit: int) -> bytes:
    """The body, counted as it streams in: a sender over ``limit`` gets 413 before the rest is read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"payload of {declared} bytes exceeds {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"payload exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> object:
    try:
        return parse_json(body)
    except JsonRejected as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _verify_sns(payload: dict, *, settings: Settings, fetch_cert: CertFetcher | None) -> None:
    """SNS signs every message: one it did not sign is refused (403) before anything is fetched or stored."""
    if not settings.sns_verify_signatures:
        return
    try:
        verify_message(payload, fetch=fetch_cert or fetch_certificate)
    except SnsSignatureError as exc:
        raise HTTPException(403, f"SNS signature check failed: {exc}") from None


def _ingest(body: bytes, *, user: str, settings: Settings, fetch_cert: CertFetcher | None = None) -> dict:
    """Parse, normalise, store (one transaction, committed before returning) and hand off; runs in a worker thread."""
    payload = _parse(body)
    if is_subscription_message(payload):  # SNS asks before it sends: confirm, store nothing
        _verify_sns(payload, settings=settings, fetch_cert=fetch_cert)
        result = confirm_subscription(payload, extra_hosts=settings.sns_confirm_hosts)
        with session_scope(settings.database_url) as session:
            record(session, actor=user, action="alerts.sns_subscription", subject=str(result.get("topic") or ""),
                   data=result)
        return result
    alerts = normalize(payload)  # IngestError -> 422, nothing stored
    if is_sns_message(payload):
        _verify_sns(payload, settings=settings, fetch_cert=fetch_cert)
    return _store(alerts, user=user, settings=settings)


def _store(alerts: list[NormalizedAlert], *, user: str, settings: Settings) -> dict:
    """Store the alerts, their incidents, the dispatch outbox rows and the staged notifications in one
    transaction; publishing is the dispatcher's (``services.incidents.dispatch``), not the request's.

    ``queued`` lists the new incidents handed to the outbox: durable with the 202, sent to the observer
    by the dispatcher as soon as the broker takes them.
    """
    with write_turn(settings.database_url), session_scope(settings.database_url) as session:
        result = store_alerts(session, alerts, group_window_s=settings.incident_group_window_s)
        deliveries = flows.stage_opened(session, result.opened, settings=settings)
        # last: on PostgreSQL the audit chain's lock is held from here to the commit, shared by every writer
        record(session, actor=user, action="alerts.ingest",
               data={"accepted": len(alerts), **{k: len(v) for k, v in result.to_dict().items()}},
               holds_write_lock=bool(result.new or result.duplicates or result.resolved or deliveries))
    from services.api.health import ALERTS_INGESTED

    ALERTS_INGESTED.inc(len(alerts))
    if result.incidents_opened or deliveries or result.resolved:  # the resolved alerts' notes too: no broker here
        dispatch.wake(settings, deliveries=deliveries, resolved=result.resolved)
    return {"accepted": len(alerts), **result.to_dict(), "queued": list(result.incidents_opened)}


@router.post("", status_code=202, summary="Ingest alerts (Alertmanager v4 / Grafana, CloudWatch/SNS incl. subscription confirmation, generic JSON)")
async def ingest(request: Request, user: str = Depends(require("operator")),
                 settings: Settings = Depends(app_settings)) -> dict:
    """Only the body read runs on the event loop; parsing and database work run in the threadpool."""
    body = await read_body(request, limit=min(MAX_BODY, settings.max_body_bytes))
    async with _ingest_slots(request.app, settings):
        return await run_in_threadpool(_ingest, body, user=user, settings=settings,
                                       fetch_cert=getattr(request.app.state, "sns_cert_fetcher", None))


def _ingest_slots(app, settings: Settings) -> anyio.Semaphore:
    """The app's bound on concurrent ingest work (``ingest_concurrency``), made on first use in its event loop."""
    slots = getattr(app.state, "ingest_slots", None)
    if slots is None:
        slots = app.state.ingest_slots = anyio.Semaphore(settings.ingest_concurrency)
    return slots


def _pagerduty(body: bytes, *, user: str, settings: Settings) -> dict:
    event = parse_event(_parse(body))  # IngestError -> 422, nothing stored
    if event.alert is not None:
        _store([event.alert], user=user, settings=settings)
    else:  # acknowledge: someone at the source is on it; the incident's timeline says so once
        with session_scope(settings.database_url) as session:
            acknowledge_at_source(session, fingerprint=fingerprint(NormalizedAlert(
                source=PAGERDUTY, name=event.dedup_key[:200], fingerprint=event.dedup_key)), actor=user)
    return {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}


@router.post("/pagerduty/enqueue", status_code=202,
             summary="PagerDuty Events API v2: trigger, acknowledge or resolve by dedup_key (answers like PagerDuty)")
async def pagerduty_enqueue(request: Request, user: str = Depends(require("operator")),
                            settings: Settings = Depends(app_settings)) -> dict:
    body = await read_body(request, limit=min(MAX_BODY, settings.max_body_bytes))
    async with _ingest_slots(request.app, settings):  # the same bound as every other ingest
        return await run_in_threadpool(_pagerduty, body, user=user, settings=settings)


@router.get("", summary="List alerts, newest first")
def list_alerts(
    user: str = Depends(require("viewer")),
    settings: Settings = Depends(app_settings),
    status: SafeStr | None = Query(None, max_length=16),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(50, ge=1, le=500),
) -> dict:
    with session_scope(settings.database_url) as session:
        query = select(Alert)
        if status:
            query = query.where(Alert.status == status)
        return page_of(session, query, order_by=Alert.id.desc(), page=page, per_page=per_page,
                       view=lambda r: AlertRead.model_validate(r).model_dump(mode="json"))
