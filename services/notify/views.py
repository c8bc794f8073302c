"""Slack interactivity: the Approve/Reject buttons of an approval message land here."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request

from services.api.deps import app_settings
from services.auth.deps import require
from services.config import Settings
from services.incidents.flows import decide
from services.notify.service import SlackVerificationError, verify_slack

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])


@router.post("/slack/interactions", summary="Slack interactivity endpoint (approval buttons)")
async def slack_interactions(request: Request, caller: str = Depends(require("public")),
                             settings: Settings = Depends(app_settings)) -> dict:
    if not settings.slack_signing_secret:
        raise HTTPException(404, "Slack interactivity is not configured (AIOPS_SLACK_SIGNING_SECRET)")
    body = await request.body()
    try:
        verify_slack(body, timestamp=request.headers.get("x-slack-request-timestamp"),
                     signature=request.headers.get("x-slack-signature"), secret=settings.slack_signing_secret)
    except SlackVerificationError as exc:
        raise HTTPException(401, f"Slack signature check failed: {exc}") from None
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        action = payload["actions"][0]
        approval_id = int(action["value"])
        user = payload.get("user", {}).get("username") or payload.get("user", {}).get("id") or "slack-user"
    except (KeyError, IndexError, ValueError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"not a Slack block_actions payload: {exc}") from None
    if action.get("action_id") not in {"approve", "reject"}:
        raise HTTPException(400, f"unknown action {action.get('action_id')!r}")
    result = decide(settings, approval_id, approved=action["action_id"] == "approve",
                    user=f"slack:{user}", comment="decided in Slack")
    return {"text": f"{result['status']} by {user}: {result['action']} on {result['target']}"}
