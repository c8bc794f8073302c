"""Every error leaves the API as RFC 9457 ``application/problem+json`` with a reason a person can act on."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import Conflict, DomainError, Invalid, NotFound, OperationFailed, Unavailable
from services.ingest.normalize import IngestError

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5
log = logging.getLogger(__name__)
# domain error type -> HTTP status; the most specific base listed first wins
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404), (Conflict, 409), (Invalid, 422), (Unavailable, 503), (OperationFailed, 500),
)


def status_for(exc: DomainError) -> int:
    """The HTTP status of a domain error, by its type (never by its message)."""
    for kind, status in DOMAIN_STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def problem(status: int, detail: str, *, title: str | None = None, instance: str | None = None, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail), instance=request.url.path)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) or "invalid request"
        return problem(422, detail, title="Invalid request", instance=request.url.path, errors=errors)

    @app.exception_handler(IngestError)
    async def _ingest(request: Request, exc: IngestError) -> JSONResponse:
        return problem(422, str(exc), title="Unprocessable alert", instance=request.url.path)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(status_for(exc), str(exc), instance=request.url.path)

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> JSONResponse:
        # a value the database refuses for its column (out of range, NUL byte, bad encoding) is the
        # client's input, not a server fault; the transaction was rolled back, nothing is stored
        log.info("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem(422, f"a value does not fit the database: {str(exc.orig).splitlines()[0][:200]}",
                       title="Invalid request", instance=request.url.path)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        # the transaction was rolled back by session_scope: nothing of this request is stored
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc.orig)
        response = problem(503, "the database is unavailable; nothing was stored, retry later",
                           title="Service Unavailable", instance=request.url.path)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "unexpected error; it was logged", instance=request.url.path)
