"""Notifications out through an outbox, and Slack interactivity in.

Out: every event is written to ``webhook_deliveries`` (one row per destination: each generic
webhook URL and the Slack incoming webhook) *before* anything is sent, then one ``notify`` task
per row sends it. A row is retried with exponential back-off on 5xx, 408/429, timeouts and
connection errors; any other answer (4xx, a redirect, an unusable URL) dead-letters it at once,
because sending the same bytes again would get the same answer. Dead rows are listed by the API
and can be redelivered. A beat job (and the API's start in embedded mode) re-sends rows whose
task was lost, so a broker outage, a receiver outage or a killed worker loses nothing.

Generic webhooks carry (see README, Integrations, for a receiver's checklist):

- ``X-Aiops-Event-Id``: the event's id, the same for every destination and every attempt; the
  body's ``event_id`` too. Receivers de-duplicate on it (delivery is at least once).
- ``X-Aiops-Signature: t=<unix seconds>,v1=<hex>`` where ``hex`` is HMAC-SHA256 with the shared
  secret over ``f"{t}.".encode() + body``. ``t`` is the time of this attempt, so a captured delivery
  goes stale: `verify_signature` refuses timestamps older than five minutes and, with a
  `ReplayGuard`, a signature it has already accepted.

Slack threads through the Web API live in `services.notify.slack`, PagerDuty pages in
`services.notify.pagerduty`; both go through this outbox (destination kinds ``slack_api`` and
``pagerduty``). In: Slack's signed requests (buttons, ``/aiops``), checked by `verify_slack`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.config import Settings
from services.errors import Conflict, Invalid, NotFound
from services.notify import pagerduty, slack
from services.notify.matchers import MatcherError, all_match, parse_matchers
from services.notify.models import DEAD, DELIVERED, PENDING, SILENCED, Silence, WebhookDelivery
from services.storage.base import rows_matched, session_scope, utcnow
from services.worker.queue import NOTIFY, enqueue

log = logging.getLogger(__name__)

NOTIFY_KINDS = {"opened", "approval_requested", "resolved", "escalated", "rejected", "drift_proposed"}
# what each kind of destination is sent: webhooks and the incoming-webhook Slack message the
# milestones, a Slack thread every step a person follows, PagerDuty the pages and their resolves
KINDS_OF_DESTINATION = {"webhook": NOTIFY_KINDS, "slack": NOTIFY_KINDS, "slack_api": slack.THREAD_KINDS,
                        "pagerduty": pagerduty.PAGE_KINDS}
STAGED_KINDS = set().union(*KINDS_OF_DESTINATION.values())
SIGNATURE_TOLERANCE_S = 300
RETRYABLE_STATUSES = {408, 429}  # a timeout or a rate limit says "later", not "never"
DEFER_S = 1.0  # a thread row waiting for the step before it looks again this often


# ---------------------------------------------------------------------------- staging (the outbox)

def destinations(settings: Settings) -> list[tuple[str, str]]:
    """``(kind, url)`` of every configured destination, generic webhooks first (the default route)."""
    found = [("webhook", url) for url in dict.fromkeys(settings.webhook_urls)]
    found += _slack_destinations(settings)
    if settings.pagerduty_routing_key:
        found.append(("pagerduty", pagerduty.destination(settings, settings.pagerduty_routing_key)))
    return found


def _slack_destinations(settings: Settings) -> list[tuple[str, str]]:
    found = []
    if settings.slack_webhook_url:
        found.append(("slack", settings.slack_webhook_url))
    if settings.slack_bot_token and settings.slack_channel:
        found.append(("slack_api", slack.destination(settings.slack_channel)))
    return found


def _configured(settings: Settings) -> bool:
    return bool(destinations(settings) or any(
        r.get("webhook_urls") or r.get("slack_webhook_url") or r.get("slack_channel") or r.get("pagerduty_routing_key")
        for r in settings.notify_routes))


def route(settings: Settings, labels: dict[str, str | None]) -> list[tuple[str, str]]:
    """The destinations of an event: the routes that match it, in order, until one without ``continue``;
    every configured destination when none matches (so adding a route never silences the rest)."""
    chosen: list[tuple[str, str]] = []
    matched = False
    for rule in settings.notify_routes:
        if not all_match(parse_matchers(rule.get("matchers") or []), labels):
            continue
        matched = True
        chosen += [("webhook", url) for url in rule.get("webhook_urls") or []]
        if rule.get("slack_webhook_url"):
            chosen.append(("slack", rule["slack_webhook_url"]))
        if rule.get("slack_channel") and settings.slack_bot_token:
            chosen.append(("slack_api", slack.destination(rule["slack_channel"])))
        if rule.get("slack"):
            chosen += _slack_destinations(settings)
        if rule.get("pagerduty_routing_key"):
            chosen.append(("pagerduty", pagerduty.destination(settings, rule["pagerduty_routing_key"])))
        if not rule.get("continue"):
            break
    return list(dict.fromkeys(chosen)) if matched else destinations(settings)


def event_labels(session: Session, *, incident_id: int, kind: str) -> dict[str, str | None]:
    """What routes and silences match on: the event's kind and its incident's severity, service, node, cluster."""
    from services.incidents.models import Incident

    labels: dict[str, str | None] = {"kind": kind, "incident_id": str(incident_id) if incident_id else ""}
    incident = session.get(Incident, incident_id) if incident_id else None
    if incident is not None:
        labels.update(severity=incident.severity, service=incident.service, node=incident.node,
                      cluster=incident.cluster, status=incident.status)
    return labels


def active_silence(session: Session, labels: dict[str, str | None], *, now: datetime) -> Silence | None:
    """The oldest silence in force whose matchers all match, if any."""
    for silence in session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)
                                   .order_by(Silence.id)):
        if all_match(parse_matchers(silence.matchers), labels):
            return silence
    return None


def _routing_key(settings: Settings, destination: str) -> str | None:
    """The PagerDuty key behind an outbox destination (the destination holds only its digest)."""
    keys = [settings.pagerduty_routing_key, *(r.get("pagerduty_routing_key") for r in settings.notify_routes)]
    return next((k for k in keys if k and pagerduty.destination(settings, k) == destination), None)


def stage_event(session: Session, settings: Settings, *, incident_id: int, title: str, kind: str, message: str,
                data: dict[str, Any], event_id: str | None = None) -> list[int]:
    """Write one outbox row per routed destination in the caller's transaction; returns the ids to send.

    Why in the caller's transaction: the timeline step and its notification commit together, so a
    crash between the two can neither lose the notification nor announce a step that was rolled back.
    Call `kick` with the ids after the commit. A muted event is written as ``silenced`` rows (listed,
    redeliverable) and none of its ids is returned.
    """
    if kind not in STAGED_KINDS or not _configured(settings):
        return []
    labels = event_labels(session, incident_id=incident_id, kind=kind)
    targets = [(k, url) for k, url in route(settings, labels) if kind in KINDS_OF_DESTINATION[k]]
    if not targets:
        return []
    now = utcnow()
    silence = active_silence(session, labels, now=now)
    event = {"event_id": event_id or str(uuid.uuid4()), "kind": kind, "incident_id": incident_id, "title": title,
             "message": message, "data": data, "created_at": now.isoformat()}
    rows = []
    for destination_kind, url in targets:
        muted = silence
        if destination_kind == "webhook" or destination_kind == "slack_api":
            body: dict[str, Any] = event
        elif destination_kind == "slack":
            body = slack_blocks(event, console_url=settings.public_url)
        else:  # pagerduty: a resolve only for a paged incident, and never muted (it would leave a page open)
            key = _routing_key(settings, url)
            if not key or not incident_id:
                continue
            if kind in pagerduty.RESOLVE_KINDS:
                if not pagerduty.was_paged(session, incident_id=incident_id, destination_value=url):
                    continue
                muted = None
            body = pagerduty.page_body(event, routing_key=key, labels=labels, console_url=settings.public_url)
        rows.append(WebhookDelivery(
            event_id=event["event_id"], kind=kind, incident_id=incident_id or None, destination=url,
            destination_kind=destination_kind, body=json.dumps(body, sort_keys=True, default=str),
            status=PENDING if muted is None else SILENCED, attempts=0, next_attempt_at=now, created_at=now,
            updated_at=now, last_error=None if muted is None else f"muted by silence {muted.id}"))
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows if row.status == PENDING]


def kick(delivery_ids: list[int], *, priority: int = 3) -> None:
    """Queue one delivery task per row; a broker that refuses leaves the rows to the outbox sweep."""
    for delivery_id in delivery_ids:
        try:
            enqueue(NOTIFY, delivery_ids=[delivery_id], priority=priority)
        except Exception:
            log.warning("could not queue delivery %s; the outbox sweep will send it", delivery_id, exc_info=True)


def notify_event(settings: Settings, *, incident_id: int, title: str, kind: str, message: str,
                 data: dict[str, Any], priority: int = 3) -> list[int]:
    """Stage the event in its own transaction and queue its deliveries (for callers with no session open)."""
    if kind not in STAGED_KINDS or not _configured(settings):
        return []
    with session_scope(settings.database_url) as session:
        ids = stage_event(session, settings, incident_id=incident_id, title=title, kind=kind, message=message,
                          data=data)
    kick(ids, priority=priority)
    return ids


# ---------------------------------------------------------------------------- signing

def sign(body: bytes, secret: str, *, timestamp: int) -> str:
    """The ``X-Aiops-Signature`` value: ``t=<timestamp>,v1=<HMAC-SHA256(secret, "<t>." + body)>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookVerificationError(ValueError):
    """A delivery a receiver must refuse; the text says why."""


class ReplayGuard:
    """Signatures accepted in the last ``window_s`` seconds; one seen again is a replay.

    Why signatures and not event ids: a retry of the same event is signed anew (new timestamp), so
    it passes here and the receiver's own de-duplication by event id decides what to do with it.
    Per process; a receiver with several processes keeps the same set in a shared store.
    """

    def __init__(self, *, window_s: int = SIGNATURE_TOLERANCE_S) -> None:
        self.window_s = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_and_remember(self, signature: str, *, now: float) -> None:
        with self._lock:
            for key, at in list(self._seen.items()):
                if now - at > 2 * self.window_s:
                    del self._seen[key]
            if signature in self._seen:
                raise WebhookVerificationError("this signature was already accepted (replayed delivery)")
            self._seen[signature] = now


def verify_signature(body: bytes, *, header: str | None, secret: str, now: float | None = None,
                     tolerance_s: int = SIGNATURE_TOLERANCE_S, guard: ReplayGuard | None = None) -> int:
    """Check an ``X-Aiops-Signature`` header as a receiver should; returns its timestamp.

    Refuses: a missing or malformed header, a timestamp more than ``tolerance_s`` away from ``now``
    (a captured delivery replayed later), a digest that does not match the body (constant-time
    compare), and with a ``guard`` a signature already accepted within the window.
    """
    if not header:
        raise WebhookVerificationError("missing X-Aiops-Signature header")
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if "t" not in parts or "v1" not in parts:
        raise WebhookVerificationError("X-Aiops-Signature must be 't=<unix seconds>,v1=<hex>'")
    try:
        timestamp = int(parts["t"])
    except ValueError:
        raise WebhookVerificationError("signature timestamp is not a number") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise WebhookVerificationError(f"signature timestamp is {int(now - timestamp)} s old (replay?)")
    expected = sign(body, secret, timestamp=timestamp)
    if not hmac.compare_digest(expected, f"t={parts['t']},v1={parts['v1']}"):
        raise WebhookVerificationError("signature does not match the body")
    if guard is not None:
        guard.check_and_remember(expected, now=now)
    return timestamp


# ---------------------------------------------------------------------------- delivery

def backoff_s(attempts: int, *, base_s: float, cap_s: float) -> float:
    """Exponential back-off with jitter (half to full step), so a recovered receiver is not hit by a wave."""
    step = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return step * (0.5 + random.random() / 2)


def lease_s(settings: Settings) -> float:
    """How long a claimed row is held: longer than one send can take, short enough to recover a dead worker."""
    return 2 * settings.webhook_timeout_s + 5


def _claim(settings: Settings, delivery_id: int, *, now: datetime) -> WebhookDelivery | None:
    """Take a due pending row (compare-and-set on its due time); None when it is not ours to send now."""
    with session_scope(settings.database_url) as session:
        claimed = rows_matched(session,
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
                   WebhookDelivery.next_attempt_at <= now)
            .values(next_attempt_at=now + timedelta(seconds=lease_s(settings)),
                    attempts=WebhookDelivery.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False))
        if claimed != 1:
            return None
        row = session.get(WebhookDelivery, delivery_id)
        session.expunge(row)
        return row


def _headers(row: WebhookDelivery, body: bytes, settings: Settings) -> dict[str, str]:
    headers = {"content-type": "application/json", "user-agent": "aiops-webhooks/1"}
    if row.destination_kind != "webhook":
        return headers
    timestamp = int(time.time())
    headers.update({"x-aiops-event-id": row.event_id, "x-aiops-delivery-id": str(row.id),
                    "x-aiops-event": row.kind, "x-aiops-timestamp": str(timestamp)})
    if settings.webhook_secret:
        headers["x-aiops-signature"] = sign(body, settings.webhook_secret, timestamp=timestamp)
    return headers


def _retry_after(response: httpx.Response) -> float | None:
    """A 429/503's ``Retry-After`` in seconds (the delta form; an HTTP date is left to the back-off)."""
    try:
        return max(1.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _send(row: WebhookDelivery, settings: Settings,
          client: httpx.Client) -> tuple[str, int | None, str | None, float | None]:
    """One attempt: ``(outcome, status code, error, retry after)`` with outcome delivered, retry, dead or defer."""
    if row.destination_kind == "slack_api":
        return slack.send(row, settings)
    body = row.body.encode()
    url = pagerduty.url_of(row.destination) if row.destination_kind == "pagerduty" else row.destination
    try:
        response = client.post(url, content=body, headers=_headers(row, body, settings))
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        return "retry", None, f"{type(exc).__name__}: {exc}"[:1000], None
    except httpx.HTTPError as exc:  # an unusable URL or protocol: sending again cannot help
        return DEAD, None, f"{type(exc).__name__}: {exc}"[:1000], None
    code = response.status_code
    if 200 <= code < 300:
        return DELIVERED, code, None, None
    reason = f"HTTP {code}: {response.text[:300]}"
    if code >= 500 or code in RETRYABLE_STATUSES:
        return "retry", code, reason, _retry_after(response)
    return DEAD, code, f"refused by the receiver, not retried ({reason})"[:1000], None


def deliver_one(settings: Settings, delivery_id: int, *, client: httpx.Client | None = None) -> str:
    """Claim, send and record one row; schedules its retry. Returns delivered, retry, dead or skipped."""
    now = utcnow()
    row = _claim(settings, delivery_id, now=now)
    if row is None:
        return "skipped"
    own = client is None
    client = client or httpx.Client(timeout=settings.webhook_timeout_s)
    try:
        outcome, code, error, retry_after = _send(row, settings, client)
    finally:
        if own:
            client.close()
    done = utcnow()
    values: dict[str, Any] = {"last_status_code": code, "last_error": error, "updated_at": done}
    delay = None
    if outcome == DELIVERED:
        values.update(status=DELIVERED, delivered_at=done)
    elif outcome == "defer":  # an earlier step of the same Slack thread goes first; not an attempt
        delay = max(DEFER_S, retry_after or 0.0)
        values.update(attempts=row.attempts - 1, next_attempt_at=done + timedelta(seconds=delay))
    elif outcome == "retry" and row.attempts < settings.webhook_max_attempts:
        delay = backoff_s(row.attempts, base_s=settings.webhook_backoff_s, cap_s=settings.webhook_backoff_max_s)
        if retry_after is not None:  # the receiver said when: not before (Slack's and PagerDuty's rate limits)
            delay = max(delay, retry_after)
        values.update(next_attempt_at=done + timedelta(seconds=delay))
    else:
        if outcome == "retry":
            error = f"gave up after {row.attempts} attempts; last: {error}"[:1000]
            values["last_error"] = error
        outcome = DEAD
        values.update(status=DEAD)
    with session_scope(settings.database_url) as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(**values)
                        .execution_options(synchronize_session=False))
    if outcome == DEAD:
        log.warning("webhook delivery %s (event %s, %s) dead-lettered: %s", row.id, row.event_id,
                    row.destination, error)
    elif delay is not None:
        if outcome != "defer":
            log.info("webhook delivery %s to %s failed (%s); attempt %s in %.1f s", row.id, row.destination, error,
                     row.attempts + 1, delay)
        try:
            enqueue(NOTIFY, delivery_ids=[row.id], countdown=delay, priority=4)
        except Exception:  # the row is pending and due later: the sweep sends it
            log.warning("could not queue the retry of delivery %s; the outbox sweep will", row.id, exc_info=True)
        return "deferred" if outcome == "defer" else "retry"
    return outcome


def deliver(settings: Settings, delivery_ids: list[int]) -> dict[int, str]:
    """Deliver some rows, each on its own: one destination's failure never re-sends another's row."""
    with httpx.Client(timeout=settings.webhook_timeout_s) as client:
        return {i: deliver_one(settings, i, client=client) for i in delivery_ids}


def sweep_outbox(settings: Settings, *, overdue_s: float | None = None, limit: int = 1000) -> int:
    """Queue a delivery task for every pending row overdue by ``overdue_s``; returns how many.

    Why "overdue" and not "due": a row that is due now usually has its (countdown) task about to
    run; only a row late by more than a sweep interval lost its task (broker outage, a restarted
    embedded process, a killed worker's lease ran out). A task for a row someone else sends is a no-op.
    """
    grace = settings.webhook_sweep_interval_s if overdue_s is None else overdue_s
    now = utcnow()
    cutoff = now - timedelta(seconds=grace)
    with session_scope(settings.database_url) as session:
        # untouched for a grace period too: a row the sweep re-queued is not re-queued again until then,
        # so a backlog of workers does not turn every sweep into another copy of every task
        ids = session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= cutoff,
            WebhookDelivery.updated_at <= cutoff)
            .order_by(WebhookDelivery.next_attempt_at).limit(limit)).all()
        if ids:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(updated_at=now)
                            .execution_options(synchronize_session=False))
    for delivery_id in ids:
        enqueue(NOTIFY, delivery_ids=[delivery_id], priority=4)
    if ids:
        log.info("outbox sweep queued %s overdue deliveries", len(ids))
    return len(ids)


def redeliver(settings: Settings, *, delivery_id: int) -> WebhookDelivery:
    """Put a dead (or delivered) row back to pending with a fresh attempt budget and queue it.

    The event id stays the same, so a receiver that did get it can tell; a pending row is a
    conflict (it is already on its way).
    """
    with session_scope(settings.database_url) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            raise NotFound(f"delivery {delivery_id} does not exist")
        if row.status == PENDING:
            raise Conflict(f"delivery {delivery_id} is already pending (attempt {row.attempts})")
        now = utcnow()
        row.status, row.attempts, row.next_attempt_at, row.updated_at = PENDING, 0, now, now
        row.delivered_at = None
        session.flush()
        session.expunge(row)
    kick([delivery_id], priority=3)
    return row


# ---------------------------------------------------------------------------- silences

def create_silence(session: Session, *, matchers: list[str], duration_s: int, starts_at: datetime | None,
                   comment: str, user: str) -> Silence:
    """Store a silence after checking its matchers (a bad regex is `Invalid`, never a silence that mutes nothing)."""
    try:
        parsed = parse_matchers(matchers)
    except MatcherError as exc:
        raise Invalid(str(exc)) from None
    start = starts_at or utcnow()
    if start.tzinfo is None:
        raise Invalid("starts_at needs a time zone (e.g. 2026-12-01T02:00:00Z)")
    try:
        ends = start + timedelta(seconds=duration_s)
    except OverflowError:
        raise Invalid("starts_at + duration_s is past the year 9999") from None
    silence = Silence(matchers=[str(m) for m in parsed], starts_at=start, ends_at=ends,
                      created_by=user, comment=comment, created_at=utcnow())
    session.add(silence)
    session.flush()
    return silence


def expire_silence(session: Session, *, silence_id: int) -> Silence:
    """End a silence now (kept for the record, like Alertmanager's expired silences)."""
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFound(f"silence {silence_id} does not exist")
    now = utcnow()
    if silence.ends_at <= now:
        raise Conflict(f"silence {silence_id} already ended at {silence.ends_at.isoformat()}")
    silence.ends_at = max(now, silence.starts_at)
    return silence


# ---------------------------------------------------------------------------- Slack

def slack_blocks(event: dict[str, Any], *, console_url: str | None) -> dict[str, Any]:
    """Block Kit message; approval requests carry Approve/Reject buttons whose value is the approval id."""
    # incident 0 is a drift event (``reconcile_workspace``): link its review page, else the incident's page
    path = f"/incidents/{event['incident_id']}" if event.get("incident_id") else "/drift"
    link = f"<{console_url.rstrip('/')}{path}|open in console>" if console_url else ""
    text = f"*#{event['incident_id']} {event['title']}* — {event['message']}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{text} {link}".strip()}}]
    approval_id = event.get("data", {}).get("approval_id")
    if event["kind"] == "approval_requested" and approval_id:
        blocks.append(slack.approval_buttons(approval_id))
    return {"text": text, "blocks": blocks}


SlackVerificationError = slack.SlackVerificationError


def verify_slack(body: bytes, *, timestamp: str | None, signature: str | None, secret: str,
                 now: float | None = None) -> None:
    """Slack's v0 request signing (slack-sdk's verifier): HMAC-SHA256 of ``v0:{timestamp}:{body}``, five minutes."""
    slack.verify_request(body, timestamp=timestamp, signature=signature, secret=secret, now=now)
