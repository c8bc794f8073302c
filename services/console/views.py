"""The operator console: server-rendered pages (Jinja2, ``web/templates``) with htmx for the small updates.

Routes here are not part of the public API (``include_in_schema=False``) but follow its rules:
each declares its role with ``require``; they call the same service functions as the API, so a
change made here is on the incident's timeline and in the audit log like one made through the API.
A GET without a session when auth is on goes to the sign-in page; every POST needs the CSRF value.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from services.api.deps import MAX_PAGE, IdPath, SafeStr, app_settings, page_of
from services.auth.deps import Require
from services.auth.roles import rank
from services.auth.service import TokenRejected, end_console_session, start_console_session
from services.auth.session import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    csrf_ok,
    csrf_token,
    end_session,
    set_csrf_cookie,
    start_session,
)
from services.config import Settings
from services.console import learning
from services.console import service as pages
from services.drift.service import review
from services.errors import Invalid
from services.incidents import flows
from services.incidents import service as incidents
from services.incidents.models import Incident
from services.storage.base import session_scope

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
SWAGGER = "/static/vendor/swagger-ui-dist-5.35.0"
REDOC = "/static/vendor/redoc-2.5.2/redoc.standalone.js"
THEMES = ("light", "dark")
templates = Jinja2Templates(directory=WEB_DIR / "templates")
router = APIRouter(include_in_schema=False)
STATUSES = ("active", "open", "diagnosing", "mitigating", "awaiting_approval", "verifying", "resolved", "escalated")
STREAM_POLL_S = 1.0
STREAM_LIFETIME_S = 300  # the browser reconnects by itself; bounded streams let servers shut down


class LoginNeeded(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class ConsoleRequire(Require):
    """``Require`` for pages: without a session (auth on) a GET goes to sign-in; a POST needs the CSRF value."""

    def __call__(self, request: Request, settings: Settings = Depends(app_settings)) -> str:
        if request.method != "GET" and not csrf_ok(request):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page")
        try:
            return super().__call__(request, settings)
        except HTTPException as exc:
            if exc.status_code == 401 and request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginNeeded(target) from None
            raise


def page(role: str) -> ConsoleRequire:
    return ConsoleRequire(role)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _redact_url(url: str) -> str:
    """A destination as the console shows it: scheme, host and first path segment. Webhook URLs often
    carry their secret in the path or query (Slack's hooks.slack.com/services/T../B../XXXX)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url[:12] + "…" if len(url) > 12 else url
    first = parts.path.strip("/").split("/")[0]
    hidden = bool(parts.query) or parts.path.strip("/") != first
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}" + \
        (f"/{first}" if first else "") + ("/…" if hidden else "")


templates.env.filters["when"] = _when
templates.env.filters["redact_url"] = _redact_url
templates.env.globals["HIGH_RISK"] = pages.HIGH_RISK


def render(request: Request, name: str, settings: Settings, **context) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    role = principal.role if principal else ("admin" if not settings.auth_required else "viewer")
    theme = request.cookies.get("theme", "")
    context.update(csrf=csrf_token(request), principal=principal, role=role, auth_required=settings.auth_required,
                   can=lambda need: rank(role) >= rank(need), theme=theme if theme in THEMES else "")
    response = templates.TemplateResponse(request, name, context)
    set_csrf_cookie(request, response, settings=settings)
    return response


def _partial(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


# --- incidents ----------------------------------------------------------------------------------


@router.get("/")
@router.get("/incidents")
def incident_list(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings),
                  q: SafeStr = Query("", max_length=200), status: SafeStr = Query("", max_length=32),
                  severity: SafeStr = Query("", max_length=16), service: SafeStr = Query("", max_length=200),
                  node: SafeStr = Query("", max_length=200), sort: SafeStr = Query("newest", max_length=16),
                  since: SafeStr = Query("", max_length=40), until: SafeStr = Query("", max_length=40),
                  page_no: int = Query(1, alias="page", ge=1, le=MAX_PAGE), per_page: int = Query(25, ge=5, le=200)):
    sort = sort if sort in incidents.SORTS else "newest"
    filters = {"q": q, "status": status, "severity": severity, "service": service, "node": node, "sort": sort,
               "since": since, "until": until, "per_page": per_page}
    since_at, until_at = incidents.parse_when(since), incidents.parse_when(until)
    with session_scope(settings.database_url) as session:
        query = incidents.incident_query(q=q, status=status or None, severity=severity or None,
                                         service=service or None, node=node or None, since=since_at, until=until_at)
        result = page_of(session, query, order_by=incidents.incident_order(sort), page=page_no, per_page=per_page,
                         view=_row)
        waiting = pages.pending_count(session)
    pages_total = max(1, math.ceil(result["total"] / per_page))
    link = {k: v for k, v in filters.items() if v}

    def page_url(n: int) -> str:
        return "/incidents?" + "&".join(f"{k}={quote(str(v))}" for k, v in {**link, "page": n}.items())

    context = dict(result=result, filters=filters, pages_total=pages_total, page_url=page_url, waiting=waiting,
                   since_at=since_at, until_at=until_at, presets=incidents.TIME_PRESETS, statuses=STATUSES, severities=incidents.SEVERITIES, sorts=incidents.SORTS)
    name = "_incident_rows.html" if _partial(request) else "incidents.html"
    return render(request, name, settings, **context)


def _row(incident: Incident) -> dict:
    return {"id": incident.id, "title": incident.title, "severity": incident.severity, "status": incident.status,
            "root_cause": incident.root_cause, "service": incident.service, "node": incident.node,
            "assignee": incident.assignee, "opened_at": incident.opened_at, "resolved_at": incident.resolved_at}


@router.get("/incidents/{incident_id}")
def incident_detail(incident_id: IdPath, request: Request, user: str = Depends(page("viewer")),
                    settings: Settings = Depends(app_settings)):
    data = pages.incident_page(settings.database_url, incident_id)
    name = "_incident_body.html" if _partial(request) else "incident.html"
    return render(request, name, settings, **data)


def _after_change(request: Request, settings: Settings, incident_id: int) -> HTMLResponse:
    return render(request, "_incident_body.html", settings, **pages.incident_page(settings.database_url, incident_id))


@router.post("/incidents/{incident_id}/ack")
def ack(incident_id: IdPath, request: Request, user: str = Depends(page("operator")),
        settings: Settings = Depends(app_settings)):
    incidents.acknowledge(settings.database_url, incident_id, user=user, notify=settings)
    return _after_change(request, settings, incident_id)


@router.post("/incidents/{incident_id}/assign")
def assign(incident_id: IdPath, request: Request, assignee: SafeStr = Form(..., min_length=1, max_length=200),
           user: str = Depends(page("operator")), settings: Settings = Depends(app_settings)):
    incidents.assign(settings.database_url, incident_id, user=user, assignee=assignee.strip(), notify=settings)
    return _after_change(request, settings, incident_id)


@router.post("/incidents/{incident_id}/severity")
def severity(incident_id: IdPath, request: Request, value: SafeStr = Form(..., alias="severity", max_length=16),
             user: str = Depends(page("operator")), settings: Settings = Depends(app_settings)):
    incidents.set_severity(settings.database_url, incident_id, user=user, severity=value)
    return _after_change(request, settings, incident_id)


@router.post("/incidents/{incident_id}/resolve")
def resolve(incident_id: IdPath, request: Request, reason: SafeStr = Form("", max_length=2000),
            user: str = Depends(page("operator")), settings: Settings = Depends(app_settings)):
    incidents.resolve_by_hand(settings.database_url, incident_id, user=user, reason=reason, notify=settings)
    return _after_change(request, settings, incident_id)


@router.post("/incidents/{incident_id}/reopen")
def reopen(incident_id: IdPath, request: Request, reason: SafeStr = Form("", max_length=2000),
           user: str = Depends(page("operator")), settings: Settings = Depends(app_settings)):
    incidents.reopen(settings.database_url, incident_id, user=user, reason=reason, notify=settings)
    return _after_change(request, settings, incident_id)


@router.post("/incidents/{incident_id}/comments")
def add_comment(incident_id: IdPath, request: Request, text: SafeStr = Form("", max_length=5000),
                user: str = Depends(page("operator")), settings: Settings = Depends(app_settings)):
    incidents.comment(settings.database_url, incident_id, user=user, text=text)
    return _after_change(request, settings, incident_id)


@router.get("/incidents/{incident_id}/postmortem.md")
def postmortem(incident_id: IdPath, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings)):
    from fastapi.responses import PlainTextResponse

    return PlainTextResponse(incidents.postmortem_markdown(settings.database_url, incident_id),
                             media_type="text/markdown; charset=utf-8", headers={
                                 "Content-Disposition": f'attachment; filename="incident-{incident_id}-postmortem.md"'})


# --- approvals ----------------------------------------------------------------------------------


@router.get("/approvals")
def approvals(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings)):
    name = "_approval_rows.html" if _partial(request) else "approvals.html"
    return render(request, name, settings, items=pages.pending_approvals(settings.database_url))


@router.post("/approvals/{approval_id}/decide")
def decide(approval_id: IdPath, request: Request, approved: bool = Form(...),
           reason: SafeStr = Form("", max_length=2000), user: str = Depends(page("approver")),
           settings: Settings = Depends(app_settings)):
    from services.actions.models import Approval

    with session_scope(settings.database_url) as session:
        approval = session.get(Approval, approval_id)
        risk, incident_id = (approval.risk, approval.incident_id) if approval else ("", None)
    if approval is not None and (risk in pages.HIGH_RISK or not approved) and not reason.strip():
        raise Invalid(f"{'rejecting' if not approved else f'a {risk}-risk action'} needs a written reason")
    flows.decide(settings, approval_id, approved=approved, user=user, comment=reason.strip())
    assert incident_id is not None, "decide raised NotFound for an approval that does not exist"
    if request.headers.get("hx-target") == "approval-list":
        return render(request, "_approval_rows.html", settings, items=pages.pending_approvals(settings.database_url))
    return _after_change(request, settings, incident_id)


# --- drift --------------------------------------------------------------------------------------


@router.get("/drift")
def drift(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings),
          status: SafeStr = Query("", max_length=32), workspace: SafeStr = Query("", max_length=200)):
    data = pages.drift_page(settings.database_url, status=status or None, workspace=workspace or None)
    name = "_drift_list.html" if _partial(request) else "drift.html"
    return render(request, name, settings, status=status, workspace=workspace, **data)


@router.post("/drift/{proposal_id}/review")
def drift_review(proposal_id: IdPath, request: Request, approved: bool = Form(...),
                 reason: SafeStr = Form("", max_length=2000), user: str = Depends(page("approver")),
                 settings: Settings = Depends(app_settings)):
    review(settings, proposal_id, approved=approved, reviewer=user,
           comment=reason.strip() or ("approved in the console" if approved else ""))
    data = pages.drift_page(settings.database_url, status=None, workspace=None)
    return render(request, "_drift_list.html", settings, status="", workspace="", **data)


# --- audit log ----------------------------------------------------------------------------------


@router.get("/audit")
def audit(request: Request, user: str = Depends(page("approver")), settings: Settings = Depends(app_settings),
          action: SafeStr = Query("", max_length=100), actor: SafeStr = Query("", max_length=200),
          subject: SafeStr = Query("", max_length=200), page_no: int = Query(1, alias="page", ge=1, le=MAX_PAGE)):
    from sqlalchemy import select

    from services.audit.models import AuditEntry

    with session_scope(settings.database_url) as session:
        query = select(AuditEntry)
        for column, value in ((AuditEntry.action, action), (AuditEntry.actor, actor), (AuditEntry.subject, subject)):
            if value:
                query = query.where(column == value)
        result = page_of(session, query, order_by=AuditEntry.id.desc(), page=page_no, per_page=50, view=lambda e: e)
        session.expunge_all()
    filters = {k: v for k, v in {"action": action, "actor": actor, "subject": subject}.items() if v}

    def page_url(n: int) -> str:
        return "/audit?" + "&".join(f"{k}={quote(str(v))}" for k, v in {**filters, "page": n}.items())

    pages_total = max(1, math.ceil(result["total"] / 50))
    name = "_audit_rows.html" if _partial(request) else "audit.html"
    return render(request, name, settings, result=result, filters=filters, page_url=page_url, pages_total=pages_total)


# --- learning loop ------------------------------------------------------------------------------


@router.get("/learning")
def learning_home(user: str = Depends(page("viewer"))):
    return RedirectResponse("/learning/episodes", status_code=303)


@router.get("/learning/episodes")
def learning_episodes(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings),
                      q: SafeStr = Query("", max_length=200), outcome: SafeStr = Query("", max_length=50),
                      page_no: int = Query(1, alias="page", ge=1, le=MAX_PAGE)):
    data = learning.episodes(settings.database_url, q=q, outcome=outcome, page=page_no)
    filters = {k: v for k, v in {"q": q, "outcome": outcome}.items() if v}
    return render(request, "learning_episodes.html", settings, filters=filters, tab="episodes",
                  page_url=_pager("/learning/episodes", filters), pages_total=_pages(data["result"]), **data)


@router.get("/learning/knowledge")
def learning_knowledge(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings),
                       q: SafeStr = Query("", max_length=200), status: SafeStr = Query("", max_length=20),
                       page_no: int = Query(1, alias="page", ge=1, le=MAX_PAGE)):
    data = learning.knowledge(settings.database_url, q=q, status=status, page=page_no)
    filters = {k: v for k, v in {"q": q, "status": status}.items() if v}
    return render(request, "learning_knowledge.html", settings, filters=filters, tab="knowledge",
                  statuses=learning.KNOWLEDGE_STATUSES, page_url=_pager("/learning/knowledge", filters),
                  pages_total=_pages(data["result"]), **data)


@router.get("/learning/models")
def learning_models(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings)):
    return render(request, "learning_models.html", settings, tab="models", cards=learning.models(settings.database_url))


def _pager(path: str, filters: dict[str, str]):
    def url(n: int) -> str:
        return path + "?" + "&".join(f"{k}={quote(str(v))}" for k, v in {**filters, "page": n}.items())
    return url


def _pages(result: dict) -> int:
    return max(1, math.ceil(result["total"] / result["per_page"]))


# --- webhook outbox: dead letters ---------------------------------------------------------------


@router.get("/webhooks")
def webhooks(request: Request, user: str = Depends(page("operator")), settings: Settings = Depends(app_settings),
             status: SafeStr = Query("dead", max_length=16), page_no: int = Query(1, alias="page", ge=1, le=MAX_PAGE)):
    data = _deliveries(settings, status=status, page_no=page_no)
    name = "_webhook_rows.html" if _partial(request) else "webhooks.html"
    return render(request, name, settings, **data)


def _deliveries(settings: Settings, *, status: str, page_no: int) -> dict:
    from sqlalchemy import func, select

    from services.notify.models import WebhookDelivery

    status = status if status in DELIVERY_STATUSES else ""
    with session_scope(settings.database_url) as session:
        query = select(WebhookDelivery)
        if status:
            query = query.where(WebhookDelivery.status == status)
        result = page_of(session, query, order_by=WebhookDelivery.id.desc(), page=page_no, per_page=50,
                         view=lambda r: r)
        counts = dict(session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all())
        session.expunge_all()
    filters = {"status": status} if status else {"status": ""}
    return {"result": result, "status": status, "counts": counts, "statuses": DELIVERY_STATUSES,
            "page_url": _pager("/webhooks", filters), "pages_total": _pages(result)}


DELIVERY_STATUSES = ("dead", "pending", "delivered", "silenced")


@router.post("/webhooks/{delivery_id}/redeliver")
def webhook_redeliver(delivery_id: IdPath, request: Request, user: str = Depends(page("operator")),
                      settings: Settings = Depends(app_settings), status: SafeStr = Form("dead", max_length=16)):
    from services.audit.service import record
    from services.notify.service import redeliver

    row = redeliver(settings, delivery_id=delivery_id)  # NotFound -> 404, already pending -> 409
    with session_scope(settings.database_url) as session:
        record(session, actor=user, action="webhooks.redeliver", subject=str(delivery_id),
               data={"event_id": row.event_id, "destination": row.destination, "from": "console"})
    return render(request, "_webhook_rows.html", settings, redelivered=delivery_id,
                  **_deliveries(settings, status=status, page_no=1))


# --- sign-in ------------------------------------------------------------------------------------


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, next: SafeStr = Query("/", max_length=500), user: str = Depends(page("public")),
               settings: Settings = Depends(app_settings)):
    return render(request, "login.html", settings, next=_safe_next(next), error="")


@router.post("/login")
def login(request: Request, token: SafeStr = Form(..., max_length=500), csrf: SafeStr = Form("", max_length=200),
          next: SafeStr = Form("/", max_length=500), settings: Settings = Depends(app_settings),
          user: str = Depends(Require("public"))):
    if not csrf_ok(request, form_value=csrf):
        raise HTTPException(403, "missing or wrong CSRF token; reload the sign-in page")
    try:
        session_id, _ = start_console_session(settings.database_url, token=token.strip(), max_age_s=SESSION_MAX_AGE_S)
    except TokenRejected as exc:
        response = render(request, "login.html", settings, next=_safe_next(next), error=str(exc))
        response.status_code = 401
        return response
    redirect = RedirectResponse(_safe_next(next), status_code=303)
    start_session(request, redirect, session_id, settings=settings)
    return redirect


@router.post("/logout")
def logout(request: Request, user: str = Depends(Require("public")), settings: Settings = Depends(app_settings)):
    if not csrf_ok(request):
        raise HTTPException(403, "missing or wrong CSRF token")
    if session_id := request.cookies.get(SESSION_COOKIE):
        end_console_session(settings.database_url, session_id)
    response = RedirectResponse("/login", status_code=303)
    end_session(response)
    return response


# --- live updates and offline API docs ----------------------------------------------------------


@router.get("/events")
async def events(request: Request, user: str = Depends(page("viewer")), settings: Settings = Depends(app_settings)):
    """Server-sent events: ``change`` whenever what the console shows changed (checked once a second)."""
    async def stream():
        last, waited = None, 0.0
        yield "retry: 2000\n\n"
        while waited < STREAM_LIFETIME_S and not await request.is_disconnected():
            version = await run_in_threadpool(pages.change_version, settings.database_url)
            if version != last:
                if last is not None:
                    yield f"event: change\ndata: {version}\n\n"
                last = version
            await asyncio.sleep(STREAM_POLL_S)
            waited += STREAM_POLL_S

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/docs")
def docs(user: str = Depends(Require("public"))):
    return get_swagger_ui_html(openapi_url="/openapi.json", title="AIOps platform API",
                               swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png")


@router.get("/redoc")
def redoc(request: Request, user: str = Depends(Require("public"))):
    """ReDoc from the vendored bundle (no CDN, no web fonts): the API reference offline."""
    return templates.TemplateResponse(request, "redoc.html", {"redoc_js": REDOC})


def install(app) -> None:
    """Mount the console and send page visitors without a session to sign-in."""
    @app.exception_handler(LoginNeeded)
    async def _login(request: Request, exc: LoginNeeded):
        return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

    app.include_router(router)

