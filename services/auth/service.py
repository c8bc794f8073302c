"""API tokens: issue, look up, revoke, list; console sessions made from them. Only SHA-256 hashes are
stored; each token change is audited."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from services.audit.service import record
from services.auth.models import ApiToken, ConsoleSession, User
from services.auth.roles import check_role
from services.errors import Conflict, NotFound
from services.storage.base import session_scope, utcnow


class TokenRejected(Exception):
    """The bearer token is unknown, revoked or expired (HTTP 401); the message says which."""


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    token_id: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(database_url: str, *, user: str, role: str = "operator", label: str = "",
                expires_in_s: float | None = None, actor: str = "cli") -> dict:
    """Make the user if needed and a new token with ``role``; returns the token (shown once) and its id."""
    check_role(role)
    token = "aiops_" + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=expires_in_s) if expires_in_s else None
    with session_scope(database_url) as session:
        account = session.scalar(select(User).where(User.name == user))
        if account is None:
            account = User(name=user, role=role)
            session.add(account)
            session.flush()
        row = ApiToken(user_id=account.id, token_hash=_hash(token), label=label, role=role, expires_at=expires)
        session.add(row)
        session.flush()
        record(session, actor=actor, action="token.create", subject=f"token:{row.id}",
               data={"user": user, "role": role, "label": label,
                     "expires_at": expires.isoformat() if expires else None})
        token_id = row.id
    return {"id": token_id, "token": token, "user": user, "role": role,
            "expires_at": expires.isoformat() if expires else None}


def create_token(database_url: str, *, user: str, role: str = "operator", label: str = "",
                 expires_in_s: float | None = None) -> str:
    """The token text only (CLI and tests)."""
    return issue_token(database_url, user=user, role=role, label=label, expires_in_s=expires_in_s)["token"]


_TOKEN_COLUMNS = (User.name, User.role, ApiToken.role, ApiToken.id, ApiToken.revoked_at, ApiToken.expires_at)


def lookup(database_url: str, token: str) -> Principal:
    with session_scope(database_url) as session:
        row = session.execute(
            select(*_TOKEN_COLUMNS).join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.token_hash == _hash(token))
        ).first()
    if row is None:
        raise TokenRejected("invalid API token")
    return _principal(*row)


def _principal(name: str, user_role: str, token_role: str | None, token_id: int, revoked_at: datetime | None,
               expires_at: datetime | None) -> Principal:
    if revoked_at is not None:
        raise TokenRejected(f"API token {token_id} was revoked")
    if expires_at is not None and expires_at <= utcnow():
        raise TokenRejected(f"API token {token_id} expired at {expires_at.isoformat()}")
    return Principal(user=name, role=token_role or user_role, token_id=token_id)


def user_for_token(database_url: str, token: str) -> str | None:
    """The token's user, or None when it is not valid now."""
    try:
        return lookup(database_url, token).user
    except TokenRejected:
        return None


def revoke_token(database_url: str, *, token_id: int, actor: str) -> dict:
    """Revoke a token for good; revoking twice is a conflict, so the audit log has one revocation."""
    with session_scope(database_url) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"API token {token_id} does not exist")
        if row.revoked_at is not None:
            raise Conflict(f"API token {token_id} was already revoked at {row.revoked_at.isoformat()}")
        row.revoked_at = utcnow()
        # its console sessions end with it (the session lookup checks the token too; this keeps the rows honest)
        session.execute(update(ConsoleSession).where(ConsoleSession.token_id == token_id,
                                                     ConsoleSession.ended_at.is_(None)).values(ended_at=row.revoked_at))
        record(session, actor=actor, action="token.revoke", subject=f"token:{token_id}")
        owner = session.get(User, row.user_id)
        assert owner is not None, "api_tokens.user_id is a foreign key"
        return token_dict(row, user=owner.name)


def token_dict(row: ApiToken, *, user: str) -> dict:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": row.id, "user": user, "role": row.role, "label": row.label, "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at), "revoked_at": iso(row.revoked_at)}


def list_tokens(database_url: str) -> list[dict]:
    with session_scope(database_url) as session:
        rows = session.execute(select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
                               .order_by(ApiToken.id)).all()
        return [token_dict(t, user=name) for t, name in rows]



# --- console sessions ---------------------------------------------------------------------------


def start_console_session(database_url: str, *, token: str, max_age_s: float) -> tuple[str, Principal]:
    """A new console session for a valid ``token``: the random session id (for the cookie only) and who it is.

    The session ends at ``max_age_s`` or the token's own expiry, whichever is first.
    Raises ``TokenRejected`` like ``lookup``.
    """
    principal = lookup(database_url, token)
    session_id = "aiops_s_" + secrets.token_urlsafe(32)
    with session_scope(database_url) as session:
        token_expires = session.scalar(select(ApiToken.expires_at).where(ApiToken.id == principal.token_id))
        expires = utcnow() + timedelta(seconds=max_age_s)
        if token_expires is not None:
            expires = min(expires, token_expires)
        session.add(ConsoleSession(session_hash=_hash(session_id), token_id=principal.token_id, expires_at=expires))
        # sessions past their expiry are refused anyway; a sign-in is a cheap moment to forget them
        session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < utcnow()))
    return session_id, principal


def lookup_console_session(database_url: str, session_id: str) -> Principal:
    """Who a console session is, checked against the session (ended, expired) and its token (revoked, expired)."""
    with session_scope(database_url) as session:
        row = session.execute(
            select(ConsoleSession.ended_at, ConsoleSession.expires_at, *_TOKEN_COLUMNS)
            .join(ApiToken, ApiToken.id == ConsoleSession.token_id).join(User, User.id == ApiToken.user_id)
            .where(ConsoleSession.session_hash == _hash(session_id))
        ).first()
    if row is None:
        raise TokenRejected("unknown console session; sign in again")
    ended_at, session_expires = row[0], row[1]
    principal = _principal(*row[2:])  # a revoked or expired token says so first
    if ended_at is not None:
        raise TokenRejected("the console session was signed out; sign in again")
    if session_expires <= utcnow():
        raise TokenRejected("the console session expired; sign in again")
    return principal


def end_console_session(database_url: str, session_id: str) -> None:
    """Sign out: the session id stops working in every API process (an unknown or ended one is a no-op)."""
    with session_scope(database_url) as session:
        session.execute(update(ConsoleSession).where(ConsoleSession.session_hash == _hash(session_id),
                                                     ConsoleSession.ended_at.is_(None)).values(ended_at=utcnow()))
