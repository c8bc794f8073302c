"""OTLP/HTTP traces in (``POST /api/v1/otlp/v1/traces``, so an exporter's base endpoint is
``http://HOST/api/v1/otlp``), and the derived call edges out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from services.alerts.views import read_body
from services.api.deps import SafeStr, app_settings
from services.auth.deps import require
from services.config import Settings
from services.storage.base import session_scope
from services.traces import otlp
from services.traces.service import store_spans, trace_edges, trace_topology

router = APIRouter(tags=["traces"])


def _ingest(body: bytes, *, content_type: str, encoding: str | None, settings: Settings) -> dict:
    raw = otlp.decompress(body, encoding, limit=settings.max_body_bytes)  # Invalid -> 422 problem+json
    spans = otlp.spans_of(otlp.parse_request(raw, content_type))
    with session_scope(settings.database_url) as session:
        return store_spans(session, spans, retention_minutes=settings.traces_retention_minutes,
                           max_per_service=settings.traces_max_spans_per_service)


@router.post("/api/v1/otlp/v1/traces", summary="OTLP/HTTP trace export (protobuf or JSON)")
async def export_traces(request: Request, user: str = Depends(require("operator")),
                        settings: Settings = Depends(app_settings)) -> Response:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media not in {otlp.PROTOBUF, otlp.JSON}:
        raise HTTPException(415, f"Content-Type {content_type!r}: OTLP/HTTP takes {otlp.PROTOBUF} or {otlp.JSON}")
    body = await read_body(request, limit=settings.max_body_bytes)
    await run_in_threadpool(_ingest, body, content_type=content_type,
                            encoding=request.headers.get("content-encoding"), settings=settings)
    payload, media_type = otlp.response(media)
    return Response(content=payload, media_type=media_type)


@router.get("/api/v1/traces/edges", summary="Call edges from recent spans, with latency and error series")
def edges(user: str = Depends(require("viewer")), settings: Settings = Depends(app_settings),
          target: SafeStr | None = Query(None, max_length=200), minutes: int = Query(15, ge=1, le=24 * 60)) -> dict:
    return {"edges": trace_edges(settings.database_url, target, minutes=minutes),
            "topology": trace_topology(settings.database_url, minutes=minutes)}
