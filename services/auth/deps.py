"""The per-route role requirement.

Every route declares one ``Require`` dependency; ``tests/platform/test_authz.py`` walks the
OpenAPI routes and checks each against every role, so a route without a declaration fails.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request

from services.api.deps import app_settings
from services.auth.roles import ANONYMOUS, PUBLIC, check_role, rank
from services.auth.service import TokenRejected, lookup
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
        if self.role == PUBLIC or (self.unless_setting and getattr(settings, self.unless_setting)):
            return "anonymous"
        header = request.headers.get("authorization", "")
        token_text = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token_text is None and (cookie := request.cookies.get(SESSION_COOKIE)):
            # the console's session: a browser sends it unasked, so a change needs the CSRF value too
            if request.method in UNSAFE and not csrf_ok(request):
                raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token); reload the console page")
            token_text = cookie
        if token_text is None:
            if settings.auth_required:
                raise HTTPException(401, "this API needs 'Authorization: Bearer <token>'; create one with "
                                         "`aiops token create NAME --role ROLE`",
                                    headers={"WWW-Authenticate": "Bearer"})
            return ANONYMOUS
        try:
            token = lookup(settings.database_url, token_text)
        except TokenRejected as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        if rank(token.role) < rank(self.role):
            raise HTTPException(403, f"this needs the {self.role} role; the token of {token.user} is {token.role}")
        request.state.principal = token
        return token.user


def require(role: str, **kwargs) -> Require:
    """The dependency for a route that needs at least ``role``."""
    return Require(role, **kwargs)


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
