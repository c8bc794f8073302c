"""The per-route role requirement.

Every route declares one ``Require`` dependency; ``tests/platform/test_authz.py`` walks the
OpenAPI routes and checks each against every role, so a route without a declaration fails.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from services.api.deps import app_settings
from services.auth.roles import ANONYMOUS, PUBLIC, check_role, rank
from services.auth.service import TokenRejected, lookup, lookup_console_session
from services.auth.session import SESSION_COOKIE, UNSAFE, csrf_ok
from services.config import Settings


class Require:
    """FastAPI dependency: the caller's name once their token's role is at least ``role``.

    ``Require("public")`` lets anyone in (health probes, Slack's signed callbacks);
    ``unless_setting`` names a boolean setting that makes the route public (``metrics_public``).
    With auth off, a request without a token is the anonymous operator of the embedded demo, but a
    token that is sent is still checked and its role enforced.
    """

    def __init__(self, role: str, *, unless_setting: str | None = None) -> None:
        self.role = role if role == PUBLIC else check_role(role)
        self.unless_setting = unless_setting

    def __repr__(self) -> str:
        return f"Require({self.role!r})"

    def __call__(self, request: Request, settings: Settings = Depends(app_settings)) -> str:
        caller = self._caller(request, settings)
        return caller if isinstance(caller, str) else self._check(request, settings, caller)

    def _caller(self, request: Request, settings: Settings) -> str | _Token:
        """The caller's name when no token needs looking up, else the token text to look up."""
        if self.role == PUBLIC or (self.unless_setting and getattr(settings, self.unless_setting)):
            return "anonymous"
        header = request.headers.get("authorization", "")
        token_text = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token_text is None and (cookie := request.cookies.get(SESSION_COOKIE)):
            # the console's session: a browser sends it unasked, so a change needs the CSRF value too
            if request.method in UNSAFE and not csrf_ok(request):
                raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token); reload the console page")
            return _Token(cookie, session=True)
        if token_text is None:
            if settings.auth_required:
                raise HTTPException(401, "this API needs 'Authorization: Bearer <token>'; create one with "
                                         "`aiops token create NAME --role ROLE`",
                                    headers={"WWW-Authenticate": "Bearer"})
            return ANONYMOUS
        return _Token(token_text)

    def _check(self, request: Request, settings: Settings, token_text: _Token) -> str:
        """Look the token up (a database read) and enforce the role."""
        try:
            if token_text.session:
                token = lookup_console_session(settings.database_url, token_text.text)
            else:
                token = lookup(settings.database_url, token_text.text)
        except TokenRejected as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        if rank(token.role) < rank(self.role):
            raise HTTPException(403, f"this needs the {self.role} role; the token of {token.user} is {token.role}")
        request.state.principal = token
        return token.user


class _Token:
    """A credential to look up: a bearer token, or (``session``) a console session id from the cookie."""

    def __init__(self, text: str, *, session: bool = False) -> None:
        self.text, self.session = text, session


class AsyncRequire(Require):
    """``Require`` run on the event loop: FastAPI runs a sync dependency in the threadpool, a hop that costs
    more CPU than the check itself on every request (alert ingest, health probes); only a token lookup,
    which reads the database, goes to the threadpool."""

    async def __call__(self, request: Request, settings: Settings = Depends(app_settings)) -> str:  # type: ignore[override]
        caller = self._caller(request, settings)
        if isinstance(caller, str):
            return caller
        return await run_in_threadpool(self._check, request, settings, caller)


def require(role: str, **kwargs) -> Require:
    """The dependency for a route that needs at least ``role`` (checked on the event loop)."""
    return AsyncRequire(role, **kwargs)


def required_role(dependant) -> str | None:
    """The role a route's dependency tree declares (``role`` or ``role?setting`` when a setting opens it)."""
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Require):
            return dep.call.role + (f"?{dep.call.unless_setting}" if dep.call.unless_setting else "")
        stack.extend(dep.dependencies)
    return None


current_user = Require("operator")  # kept for callers written before roles; new routes name their role
