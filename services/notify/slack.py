"""Slack through the Web API (slack-sdk): one thread per incident, buttons, and the ``/aiops`` command.

Out: the first event of an incident posts the parent message (``chat.postMessage``) and stores its
``ts`` in ``slack_threads``; every later step is a reply with ``thread_ts`` and the parent is edited
(``chat.update``) to show the current status, so a channel gets one message per incident however
long it runs. Rows of one thread are sent in order: a row waits while an earlier row of the same
incident and channel is still pending. Slack answers errors with ``{"ok": false, "error": ...}``;
``ratelimited`` (HTTP 429) is retried after its ``Retry-After``, server errors and connection
errors with the outbox's back-off, anything else (``channel_not_found``, ``invalid_auth``, ...) is
final and the row is dead-lettered with Slack's error.

In: interactivity (Approve/Reject buttons) and the slash command are checked with slack-sdk's
`SignatureVerifier` (Slack's v0 scheme: HMAC-SHA256 of ``v0:<timestamp>:<body>``, five minutes).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.config import Settings
from services.notify.models import PENDING, SlackThread, WebhookDelivery
from services.storage.base import session_scope, utcnow

log = logging.getLogger(__name__)

PREFIX = "slack:"
# the steps a person following the incident wants in its thread (probe scheduling and re-checks are left out)
THREAD_KINDS = {"opened", "diagnosed", "planned", "approval_requested", "approval", "executed", "verified",
                "resolved", "self_recovered", "escalated", "rejected", "blocked", "acknowledged", "assigned",
                "reopened", "drift_proposed"}
# Slack errors worth another try; every other ``ok: false`` answer would be the same next time
RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
STATUS_ICON = {"open": ":red_circle:", "observing": ":mag:", "diagnosing": ":mag:", "mitigating": ":wrench:",
               "verifying": ":hourglass:", "resolved": ":white_check_mark:", "escalated": ":rotating_light:",
               "closed": ":white_check_mark:"}


class SlackVerificationError(ValueError):
    """A request that did not come from Slack (or came too late); the text says why."""


def verify_request(body: bytes, *, timestamp: str | None, signature: str | None, secret: str,
                   now: float | None = None) -> None:
    """Slack's v0 request signing checked by slack-sdk's `SignatureVerifier`, with the reason on failure."""
    if not timestamp or not signature:
        raise SlackVerificationError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SlackVerificationError("X-Slack-Request-Timestamp is not a number") from None
    clock_now = time.time() if now is None else now
    if abs(clock_now - sent) > 300:
        raise SlackVerificationError("request timestamp is too old (replay?)")

    class _Clock(Clock):
        def now(self) -> float:
            return clock_now

    if not SignatureVerifier(secret, clock=_Clock()).is_valid(body=body, timestamp=timestamp, signature=signature):
        raise SlackVerificationError("signature does not match")


def client(settings: Settings) -> WebClient:
    """A WebClient on the configured base URL; connection errors get one quick retry, rate limits go
    back to the outbox (a worker thread never sleeps through a ``Retry-After``)."""
    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                     timeout=max(1, int(settings.webhook_timeout_s)),
                     retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)])


def destination(channel: str) -> str:
    return f"{PREFIX}{channel}"


# ---------------------------------------------------------------------------- messages

def _link(settings: Settings, incident_id: int | None) -> str:
    if not settings.public_url:
        return ""
    path = f"/incidents/{incident_id}" if incident_id else "/drift"
    return f" <{settings.public_url.rstrip('/')}{path}|open in console>"


def parent_message(incident: dict[str, Any], *, last: str, settings: Settings) -> dict[str, Any]:
    """The thread's first message, edited as the incident moves: title, where, status and the last step."""
    icon = STATUS_ICON.get(incident["status"], ":large_blue_circle:")
    where = " · ".join(str(v) for v in (incident.get("service"), incident.get("node"), incident.get("cluster")) if v)
    text = (f"{icon} *#{incident['id']} {incident['title']}* [{incident['severity']}] — *{incident['status']}*"
            f"{_link(settings, incident['id'])}")
    context = f"{where} · last: {last}" if where else f"last: {last}"
    return {"text": f"#{incident['id']} {incident['title']} — {incident['status']}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                       {"type": "context", "elements": [{"type": "mrkdwn", "text": context[:2900]}]}]}


def approval_buttons(approval_id: int | str) -> dict[str, Any]:
    """The Approve/Reject actions block; the interactivity endpoint reads the approval id from each value."""
    return {"type": "actions", "block_id": f"approval-{approval_id}", "elements": [
        {"type": "button", "action_id": "approve", "style": "primary", "value": str(approval_id),
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": "reject", "style": "danger", "value": str(approval_id),
         "text": {"type": "plain_text", "text": "Reject"}},
    ]}


def reply_message(event: dict[str, Any]) -> dict[str, Any]:
    """One step as a thread reply; an approval request carries Approve/Reject buttons (value = approval id)."""
    text = f"*{event['kind'].replace('_', ' ')}*: {event['message']}"[:2900]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    approval_id = (event.get("data") or {}).get("approval_id")
    if event["kind"] == "approval_requested" and approval_id:
        blocks.append(approval_buttons(approval_id))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       f"or `/aiops approve {event['incident_id']} <reason>` / `/aiops reject {event['incident_id']} <reason>`"}]})
    return {"text": f"{event['kind']}: {event['message']}"[:3000], "blocks": blocks}


# ---------------------------------------------------------------------------- sending one outbox row

def _incident(session: Any, incident_id: int) -> dict[str, Any] | None:
    from services.incidents.models import Incident

    row = session.get(Incident, incident_id)
    if row is None:
        return None
    return {"id": row.id, "title": row.title, "severity": row.severity, "status": row.status,
            "service": row.service, "node": row.node, "cluster": row.cluster}


def _classify(exc: Exception) -> tuple[str, int | None, str, float | None]:
    """``(outcome, status code, error, retry after)`` of a failed Web API call."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = str(response.get("error") or "unknown_error") if isinstance(response.data, dict) else "unreadable answer"
        code = response.status_code
        if code == 429 or error == "ratelimited":
            headers = {k.lower(): v for k, v in (response.headers or {}).items()}
            value = headers.get("retry-after")
            value = value[0] if isinstance(value, list) else value
            try:
                retry_after = max(1.0, float(value)) if value is not None else None
            except ValueError:
                retry_after = None
            return "retry", code, f"Slack: ratelimited (Retry-After {value})", retry_after
        if code >= 500 or error in RETRYABLE_ERRORS:
            return "retry", code, f"Slack: HTTP {code} {error}", None
        return "dead", code, f"refused by Slack, not retried ({error})", None
    if isinstance(exc, (URLError, TimeoutError, ConnectionError, OSError)):
        return "retry", None, f"{type(exc).__name__}: {exc}"[:1000], None
    if isinstance(exc, SlackRequestError):
        return "dead", None, f"SlackRequestError: {exc}"[:1000], None
    raise exc


def _earlier_pending(session: Any, row: WebhookDelivery) -> float | None:
    """Seconds to wait for the pending steps before this one (None: this row is next).

    Until the earliest is due, but 1 to 5 s: a step in flight holds a lease longer than its send takes.
    """
    due = session.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.destination == row.destination, WebhookDelivery.incident_id == row.incident_id,
        WebhookDelivery.status == PENDING, WebhookDelivery.id < row.id))
    return None if due is None else min(5.0, max(1.0, (due - utcnow()).total_seconds()))


def send(row: WebhookDelivery, settings: Settings) -> tuple[str, int | None, str | None, float | None]:
    """One attempt at one thread row: ``(outcome, status code, error, retry after)``.

    outcome is delivered, retry, dead, or defer (an earlier step of this thread is still on its way).
    """
    if not settings.slack_bot_token:
        return "dead", None, "no Slack bot token configured (AIOPS_SLACK_BOT_TOKEN)", None
    channel = row.destination[len(PREFIX):]
    event = json.loads(row.body)
    incident_id = row.incident_id
    web = client(settings)
    with session_scope(settings.database_url) as session:
        wait = _earlier_pending(session, row) if incident_id else None
        if wait is not None:
            return "defer", None, "waiting for an earlier step of this thread", wait
        thread = session.scalar(select(SlackThread).where(SlackThread.incident_id == incident_id,
                                                          SlackThread.channel == channel)) if incident_id else None
        incident = _incident(session, incident_id) if incident_id else None
        if thread is not None:
            session.expunge(thread)
    try:
        if incident is None:  # a drift proposal (or an incident since deleted): a plain message
            web.chat_postMessage(channel=channel, **reply_message(event))
            return "delivered", 200, None, None
        assert incident_id is not None, "the incident was read by this id"
        last = f"{event['kind'].replace('_', ' ')}: {event['message']}"
        if thread is None:
            answer = web.chat_postMessage(channel=channel, **parent_message(incident, last=last, settings=settings))
            thread = _remember_thread(settings, incident_id=incident_id, channel=channel,
                                      channel_id=str(answer.get("channel") or channel), ts=str(answer["ts"]),
                                      event_id=row.event_id if event["kind"] == "opened" else None)
            if event["kind"] == "opened":
                return "delivered", 200, None, None
        if thread.last_event_id != row.event_id:
            web.chat_postMessage(channel=thread.channel_id, thread_ts=thread.ts, **reply_message(event))
            with session_scope(settings.database_url) as session:
                stored = session.get(SlackThread, thread.id)
                assert stored is not None, "thread rows are never deleted"
                stored.last_event_id, stored.updated_at = row.event_id, utcnow()
        web.chat_update(channel=thread.channel_id, ts=thread.ts,
                        **parent_message(incident, last=last, settings=settings))
        return "delivered", 200, None, None
    except Exception as exc:  # noqa: BLE001 - classified below; anything unknown is re-raised
        outcome, code, error, retry_after = _classify(exc)
        return outcome, code, error, retry_after


def _remember_thread(settings: Settings, *, incident_id: int, channel: str, channel_id: str, ts: str,
                     event_id: str | None) -> SlackThread:
    """Store the parent's ts; if another process stored one first (a lease ran out mid-send), theirs wins."""
    try:
        with session_scope(settings.database_url) as session:
            thread = SlackThread(incident_id=incident_id, channel=channel, channel_id=channel_id, ts=ts,
                                 last_event_id=event_id,
                                 created_at=utcnow(), updated_at=utcnow())
            session.add(thread)
            session.flush()
            session.expunge(thread)
            return thread
    except IntegrityError:
        with session_scope(settings.database_url) as session:
            winner = session.scalar(select(SlackThread).where(SlackThread.incident_id == incident_id,
                                                              SlackThread.channel == channel))
            assert winner is not None, "the IntegrityError was the other process's row for this thread"
            session.expunge(winner)
            log.warning("incident %s got two Slack parent messages in %s (kept %s)", incident_id, channel, winner.ts)
            return winner


def mark_decided(settings: Settings, *, channel: str | None, ts: str | None, text: str) -> None:
    """Replace an approval message's buttons by who decided (best effort: the decision is already stored)."""
    if not (settings.slack_bot_token and channel and ts):
        return
    try:
        client(settings).chat_update(channel=channel, ts=ts, text=text,
                                     blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
    except Exception:  # noqa: BLE001 - the buttons stay; a second click gets "already decided"
        log.warning("could not update the Slack approval message %s in %s", ts, channel, exc_info=True)
