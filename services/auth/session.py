"""Console sign-in: an API token exchanged for a session cookie, and CSRF protection for it.

The session cookie holds the API token itself (``HttpOnly``, ``SameSite=Strict``, ``Secure`` on
HTTPS), so revoking or expiring the token ends the session too, and roles are the token's. A
browser sends cookies on its own, so every unsafe request authenticated by the cookie must also
carry ``X-CSRF-Token`` (or the form field ``csrf``) equal to the CSRF cookie (double submit): a
page of another site can make the browser send the cookies but can neither read the CSRF value nor
set the header. Bearer-token requests (CLI, scripts) need no CSRF token: nothing sends them unasked.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

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
    return bool(expected) and hmac.compare_digest(expected, sent)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Set the CSRF cookie when ``csrf_token`` made a new one for this request."""
    new = getattr(request.state, "new_csrf", None)
    if new and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", secure=_secure(request), path="/")


def start_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_MAX_AGE_S, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")
    # a fresh CSRF value per session: one fixed before sign-in cannot be reused after it
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), httponly=True, samesite="strict",
                        secure=_secure(request), path="/")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
