"""Token administration over the API (admins only); the CLI does the same with ``aiops token``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from services.api.deps import MAX_ID, SafeStr, app_settings
from services.auth.deps import require
from services.auth.roles import ROLES
from services.auth.service import issue_token, list_tokens, revoke_token
from services.config import Settings

router = APIRouter(prefix="/api/v1/tokens", tags=["auth"])


class TokenRequest(BaseModel):
    user: SafeStr = Field(min_length=1, max_length=200)
    role: str = Field(default="operator", pattern="^(" + "|".join(ROLES) + ")$")
    label: SafeStr = Field(default="", max_length=200)
    expires_in_s: int | None = Field(default=None, ge=60, le=10 * 365 * 86400)


@router.get("", summary="API tokens (never their text)")
def tokens(user: str = Depends(require("admin")), settings: Settings = Depends(app_settings)) -> dict:
    return {"items": list_tokens(settings.database_url)}


@router.post("", status_code=201, summary="Create a token; its text is in this response only")
def create(body: TokenRequest, user: str = Depends(require("admin")),
           settings: Settings = Depends(app_settings)) -> dict:
    return issue_token(settings.database_url, user=body.user, role=body.role, label=body.label,
                       expires_in_s=body.expires_in_s, actor=user)


@router.delete("/{token_id}", summary="Revoke a token")
def revoke(token_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: str = Depends(require("admin")),
           settings: Settings = Depends(app_settings)) -> dict:
    return revoke_token(settings.database_url, token_id=token_id, actor=user)
