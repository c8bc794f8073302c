"""What Slack users can do from Slack: the ``/aiops`` slash command and the Approve/Reject buttons.

Plain functions from an already verified request to the text Slack shows; the routes in
``views.py`` check the signature first. Every decision goes through the same functions as the
console (`decide`, `acknowledge`), so it is audited and claimed once whoever clicks first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.actions.models import Approval
from services.config import Settings
from services.errors import Conflict, Invalid, NotFound
from services.incidents.flows import decide
from services.incidents.models import OPEN_STATUSES, Incident
from services.incidents.service import acknowledge
from services.storage.base import session_scope

USAGE = ("`/aiops status` open incidents · `/aiops status <id>` one incident · `/aiops ack <id>` acknowledge · "
         "`/aiops approve <id> [reason]` / `/aiops reject <id> [reason]` decide the incident's pending approval")
STATUS_LIMIT = 15


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def allowed(settings: Settings, slack_user_id: str | None) -> bool:
    """Anyone the (verified) request comes from, unless ``slack_approver_ids`` names who may decide."""
    return not settings.slack_approver_ids or (slack_user_id or "") in settings.slack_approver_ids


def _incident_id(text: str) -> int:
    token = text.strip().lstrip("#")
    if not token.isdigit() or len(token) > 9:
        raise Invalid(f"{text!r} is not an incident id (a number like 12 or #12)")
    return int(token)


def _status_all(settings: Settings) -> str:
    with session_scope(settings.database_url) as session:
        rows = session.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES))
                               .order_by(Incident.id.desc()).limit(STATUS_LIMIT + 1)).all()
        if not rows:
            return "no open incidents"
        lines = [f"#{i.id} [{i.severity}] {i.title} — {i.status}"
                 + (f" (ack {i.acknowledged_by})" if i.acknowledged_by else "") for i in rows[:STATUS_LIMIT]]
    more = "\n…and more in the console" if len(rows) > STATUS_LIMIT else ""
    return "open incidents:\n" + "\n".join(lines) + more


def _status_one(settings: Settings, incident_id: int) -> str:
    with session_scope(settings.database_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} does not exist")
        pending = session.scalars(select(Approval).where(Approval.incident_id == incident_id,
                                                         Approval.status == "pending")).all()
        lines = [f"#{incident.id} [{incident.severity}] {incident.title} — {incident.status}",
                 f"root cause: {incident.root_cause or 'not yet'}; mitigation: {incident.mitigation or 'none yet'}"]
        lines += [f"waiting for approval: {a.action_kind} on {a.target} (risk {a.risk})" for a in pending]
    return "\n".join(lines)


def _pending_approval(settings: Settings, incident_id: int) -> int:
    with session_scope(settings.database_url) as session:
        if session.get(Incident, incident_id) is None:
            raise NotFound(f"incident {incident_id} does not exist")
        approval_id = session.scalar(select(Approval.id).where(
            Approval.incident_id == incident_id, Approval.status == "pending").order_by(Approval.id.desc()).limit(1))
    if approval_id is None:
        raise Conflict(f"incident {incident_id} has no approval waiting")
    return approval_id


def run_command(settings: Settings, *, text: str, user_id: str | None, user_name: str | None) -> dict[str, Any]:
    """``/aiops <text>`` -> Slack's answer. Errors are answered to the caller alone, never raised (Slack shows
    a non-200 as "failed with the error dispatch_failed", which tells the person nothing)."""
    words = text.split()
    verb = words[0].lower() if words else "help"
    user = f"slack:{user_name or user_id or 'unknown'}"
    try:
        if verb == "status":
            return ephemeral(_status_one(settings, _incident_id(words[1])) if len(words) > 1 else _status_all(settings))
        if verb in {"ack", "approve", "reject"}:
            if len(words) < 2:
                return ephemeral(f"`/aiops {verb}` needs an incident id. {USAGE}")
            if not allowed(settings, user_id):
                return ephemeral(f"you are not allowed to {verb} from Slack (AIOPS_SLACK_APPROVER_IDS)")
            incident_id = _incident_id(words[1])
            if verb == "ack":
                acknowledge(settings.database_url, incident_id, user=user, notify=settings)
                return {"response_type": "in_channel", "text": f"#{incident_id} acknowledged by {user_name or user_id}"}
            reason = " ".join(words[2:]) or f"{verb}d in Slack"
            result = decide(settings, _pending_approval(settings, incident_id), approved=verb == "approve",
                            user=user, comment=reason)
            return {"response_type": "in_channel",
                    "text": f"#{incident_id}: {result['action']} on {result['target']} {result['status']} by "
                            f"{user_name or user_id}: {reason}"}
        return ephemeral(USAGE)
    except (NotFound, Conflict, Invalid) as exc:
        return ephemeral(str(exc))


def click(settings: Settings, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An Approve/Reject button: ``(text for the message, where the message is)``; errors are texts too."""
    try:
        action = payload["actions"][0]
        approval_id = int(action["value"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise Invalid(f"not a Slack block_actions payload: {exc}") from None
    if action.get("action_id") not in {"approve", "reject"}:
        raise Invalid(f"unknown action {action.get('action_id')!r}")
    who = payload.get("user") or {}
    name = who.get("username") or who.get("name") or who.get("id") or "slack-user"
    where = {"channel": (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id"),
             "ts": (payload.get("container") or {}).get("message_ts") or (payload.get("message") or {}).get("ts")}
    if not allowed(settings, who.get("id")):
        return f"{name} is not allowed to decide approvals from Slack", {}
    try:
        result = decide(settings, approval_id, approved=action["action_id"] == "approve", user=f"slack:{name}",
                        comment="decided in Slack")
    except (NotFound, Conflict) as exc:
        return str(exc), {}
    return f"{result['status']} by {name}: {result['action']} on {result['target']}", where
