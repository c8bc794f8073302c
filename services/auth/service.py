"""API tokens: issue, verify, and the FastAPI dependency that guards mutating routes."""

from __future__ import annotations

import hashlib
import secrets

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select

from services.api.deps import app_settings
from services.auth.models import ApiToken, User
from services.config import Settings
from services.storage.base import session_scope


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(database_url: str, *, user: str, role: str = "operator", label: str = "") -> str:
    """Make a user if needed and return a new token; only its hash is stored."""
    token = "aiops_" + secrets.token_urlsafe(32)
    with session_scope(database_url) as session:
        account = session.scalar(select(User).where(User.name == user))
        if account is None:
            account = User(name=user, role=role)
            session.add(account)
            session.flush()
        session.add(ApiToken(user_id=account.id, token_hash=_hash(token), label=label))
    return token


def user_for_token(database_url: str, token: str) -> str | None:
    with session_scope(database_url) as session:
        row = session.execute(
            select(User.name).join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None))
        ).first()
        return row[0] if row else None


def current_user(request: Request, settings: Settings = Depends(app_settings)) -> str:
    """The caller's name; anonymous "operator" when auth is off (embedded demo)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        name = user_for_token(settings.database_url, header[7:].strip())
        if name:
            return name
        raise HTTPException(401, "invalid or revoked API token")
    if settings.auth_required:
        raise HTTPException(401, "this API needs 'Authorization: Bearer <token>'; create one with `aiops token create`")
    return "operator"
