"""Console sign-in: an API token exchanged for a server-side session, and CSRF protection for it.

The session cookie holds a random session id, never the token: the database keeps the id's SHA-256,
the token it was made from, and its expiry (``services.auth.service.start_console_session``), so
every API process sees the same sessions, logging out ends the session everywhere, and revoking or
expiring the token ends its sessions too; roles are the token's. The cookies are ``HttpOnly``,
``SameSite=Lax`` (a link from Slack or a page opens the console signed in; a cross-site POST carries
no cookie) and ``Secure`` when the console is served over HTTPS (``AIOPS_COOKIE_SECURE``: unset means
"when the request or ``AIOPS_PUBLIC_URL`` is https"). A browser sends cookies on its own, so every
unsafe request authenticated by the cookie must also carry ``X-CSRF-Token`` (or the form field
``csrf``) equal to the CSRF cookie (double submit): a page of another site can make the browser send
the cookies but can neither read the CSRF value nor set the header. Bearer-token requests (CLI,
scripts) need no CSRF token: nothing sends them unasked.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

from services.config import Settings

SESSION_COOKIE = "aiops_session"
CSRF_COOKIE = "aiops_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_MAX_AGE_S = 12 * 3600


def csrf_token(request: Request) -> str:
    """The CSRF value of this browser (made on first use; the response must then set the cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = request.state.new_csrf = secrets.token_urlsafe(24)
    return token


def csrf_ok(request: Request, *, form_value: str | None = None) -> bool:
    """The request carries the browser's CSRF value in the header (htmx) or the form field."""
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    if not expected:
        return False
    return hmac.compare_digest(expected, sent)


def _secure(request: Request, settings: Settings) -> bool:
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return (request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
            or (settings.public_url or "").startswith("https://"))


def _set(request: Request, response: Response, name: str, value: str, *, settings: Settings,
         max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=_secure(request, settings), path="/")


def set_csrf_cookie(request: Request, response: Response, *, settings: Settings) -> None:
    """Set the CSRF cookie when ``csrf_token`` made a new one for this request."""
    new = getattr(request.state, "new_csrf", None)
    if new and not request.cookies.get(CSRF_COOKIE):
        _set(request, response, CSRF_COOKIE, new, settings=settings)


def start_session(request: Request, response: Response, session_id: str, *, settings: Settings) -> None:
    """Hand the browser its session id (from ``start_console_session``) and a fresh CSRF value."""
    _set(request, response, SESSION_COOKIE, session_id, settings=settings, max_age=SESSION_MAX_AGE_S)
    # a fresh CSRF value per session: one fixed before sign-in cannot be reused after it
    _set(request, response, CSRF_COOKIE, secrets.token_urlsafe(24), settings=settings)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
