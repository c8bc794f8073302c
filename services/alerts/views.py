"""Alert ingestion endpoints: Alertmanager, CloudWatch/SNS and generic webhooks all POST here."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from services.alerts.group import GroupWriter, Post, writer_for
from services.alerts.models import Alert, AlertRead, NormalizedAlert
from services.alerts.service import IngestResult, acknowledge_at_source, store_alerts, store_batches
from services.api.deps import MAX_PAGE, SafeStr, app_settings, page_of
from services.audit.service import record, record_many
from services.auth.deps import require
from services.config import Settings
from services.incidents import dispatch, flows
from services.incidents.service import group_key
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


SMALL_BODY = 8 * 1024  # bodies up to this are parsed and normalised on the event loop (well under a millisecond)


def _ingest(body: bytes, *, user: str, settings: Settings, fetch_cert: CertFetcher | None = None) -> dict | list:
    """Parse and normalise a body in a worker thread (a large one, or SNS with its signature check).

    Returns the reply of an SNS subscription confirmation (nothing to store), else the normalised alerts.
    """
    return _prepare(_parse(body), user=user, settings=settings, fetch_cert=fetch_cert)


def _prepare(payload: object, *, user: str, settings: Settings, fetch_cert: CertFetcher | None = None) -> dict | list:
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
    return alerts


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
    return _stored([(alerts, result)], deliveries=deliveries, settings=settings)[0]


def _store_group(posts: list[Post]) -> list[dict]:
    """``_store`` for a group of posts (``services.alerts.group``): one transaction, one audit lock, one commit."""
    settings = posts[0].settings
    with write_turn(settings.database_url), session_scope(settings.database_url) as session:
        results = store_batches(session, [p.alerts for p in posts], group_window_s=settings.incident_group_window_s,
                                fingerprints=[p.fingerprints for p in posts])
        deliveries = [d for result in results for d in flows.stage_opened(session, result.opened, settings=settings)]
        record_many(session, [{"actor": p.user, "action": "alerts.ingest",
                               "data": {"accepted": len(p.alerts), **{k: len(v) for k, v in r.to_dict().items()}}}
                              for p, r in zip(posts, results, strict=True)],
                    holds_write_lock=any(r.new or r.duplicates or r.resolved for r in results) or bool(deliveries))
    return _stored([(p.alerts, r) for p, r in zip(posts, results, strict=True)], deliveries=deliveries,
                   settings=settings)


def _stored(done: list[tuple[list[NormalizedAlert], IngestResult]], *, deliveries: list[int],
            settings: Settings) -> list[dict]:
    """After the commit: count, wake the dispatcher, and the replies.

    Nothing here may raise: the posts are committed, and an error would send the group writer to store
    them again one by one (each alert then counted twice). What a failed wake-up would have sent waits
    in the outbox for the dispatcher's next poll or beat's sweep.
    """
    from services.api.health import ALERTS_INGESTED

    try:
        ALERTS_INGESTED.inc(sum(len(alerts) for alerts, _ in done))
        resolved = [i for _, result in done for i in result.resolved]
        if deliveries or resolved or any(result.incidents_opened for _, result in done):  # resolved notes too
            dispatch.wake(settings, deliveries=deliveries, resolved=resolved)
    except Exception:  # noqa: BLE001 - see above: committed, never stored twice
        log.exception("stored %d posts but could not wake their dispatch; the outbox keeps them", len(done))
    return [{"accepted": len(alerts), **result.to_dict(), "queued": list(result.incidents_opened)}
            for alerts, result in done]


def _writer(settings: Settings) -> GroupWriter:
    # looked up at call time: tests replace ``_store`` / ``_store_group`` / ``store_alerts`` here
    return writer_for(settings.database_url,
                      one=lambda post: _store(post.alerts, user=post.user, settings=post.settings),
                      many=lambda posts: _store_group(posts))


def _post(alerts: list[NormalizedAlert], *, user: str, settings: Settings, settle: Any) -> Post:
    """The writer's view of a post: its alerts with their fingerprints and group keys (the clash rule's)."""
    return Post(alerts, user, settings, settle, [fingerprint(a) for a in alerts], {group_key(a) for a in alerts})


async def _store_grouped(alerts: list[NormalizedAlert], *, user: str, settings: Settings) -> dict:
    """Hand the alerts to the database's writer thread; the reply comes after its group's commit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        loop.call_soon_threadsafe(_settle, done, ok, value)

    _writer(settings).submit(_post(alerts, user=user, settings=settings, settle=settle))
    return await done


def store_blocking(alerts: list[NormalizedAlert], *, user: str, settings: Settings) -> dict:
    """``_store_grouped`` for a caller in a thread (not on an event loop): waits for its group's commit."""
    done, box = threading.Event(), []

    def settle(ok: bool, value: Any) -> None:
        box.append((ok, value))
        done.set()

    _writer(settings).submit(_post(alerts, user=user, settings=settings, settle=settle))
    done.wait()
    ok, value = box[0]
    if not ok:
        raise value
    return value


def _settle(done: asyncio.Future, ok: bool, value: Any) -> None:
    if done.done():  # the request was cancelled (client gone): its alerts are stored all the same
        return
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value)


def _reply(result: dict) -> JSONResponse:
    """The 202 as plain JSON: the body FastAPI sent for the returned dict, without its validation and encoder pass."""
    return JSONResponse(result, status_code=202)


@router.post("", status_code=202, response_model=None, responses={202: {"content": {"application/json": {
    "schema": {"type": "object", "additionalProperties": True}}}}},
    summary="Ingest alerts (Alertmanager v4 / Grafana, CloudWatch/SNS incl. subscription confirmation, generic JSON)")
async def ingest(request: Request, user: str = Depends(require("operator")),
                 settings: Settings = Depends(app_settings)) -> JSONResponse:
    """A small body is parsed and normalised on the event loop, a large one (or SNS, with its signature
    check) in the threadpool within ``ingest_concurrency``; storing is the group writer's (one commit for
    every post waiting), and the 202 comes after that commit."""
    body = await read_body(request, limit=min(MAX_BODY, settings.max_body_bytes))
    payload = _parse(body) if len(body) <= SMALL_BODY else None
    if payload is not None and not is_sns_message(payload) and not is_subscription_message(payload):
        prepared: dict | list = normalize(payload)  # IngestError -> 422, nothing stored
    else:
        async with _ingest_slots(request.app, settings):
            prepared = await run_in_threadpool(_ingest, body, user=user, settings=settings,
                                               fetch_cert=getattr(request.app.state, "sns_cert_fetcher", None))
    if isinstance(prepared, dict):  # an SNS subscription confirmed
        return _reply(prepared)
    return _reply(await _store_grouped(prepared, user=user, settings=settings))


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
