"""Amazon SNS HTTP(S) subscriptions: confirm a ``SubscriptionConfirmation`` so CloudWatch alarms can flow in.

An SNS topic delivers nothing to a new HTTP endpoint until the endpoint fetches the message's
``SubscribeURL``. Why the host check: the request that carries that URL is unauthenticated, so
fetching any URL it names would let anyone make this server call an address of their choosing
(SSRF). Only ``https://sns.<region>.amazonaws.com[.cn]`` is fetched, plus the hosts an operator
lists in ``sns_confirm_hosts`` (a local SNS emulator). The message's RSA signature is not checked
here: the confirmation only subscribes us to a topic that exists at AWS, and notifications are
then parsed like any other alert.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.errors import Invalid, Unavailable

SUBSCRIPTION_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
_AWS_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def is_subscription_message(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("Type") in SUBSCRIPTION_TYPES


def confirm_subscription(payload: dict, *, extra_hosts: list[str], timeout_s: float = 10.0) -> dict[str, Any]:
    """Confirm a subscription by fetching its ``SubscribeURL``; an unsubscribe notice is acknowledged only.

    Raises `Invalid` (422) for a message that is not a usable confirmation or a URL we will not
    fetch, `Unavailable` (503) when SNS cannot be reached (SNS retries the confirmation).
    """
    kind, topic = payload.get("Type"), payload.get("TopicArn")
    if kind == "UnsubscribeConfirmation":
        return {"sns": kind, "topic": topic, "confirmed": False}
    url = payload.get("SubscribeURL")
    if not isinstance(url, str) or not url:
        raise Invalid("SubscriptionConfirmation without a SubscribeURL")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise Invalid(f"SubscribeURL {url[:100]!r} is not a URL") from None
    aws = parts.scheme == "https" and bool(_AWS_SNS_HOST.match(host))
    listed = parts.netloc in extra_hosts or host in extra_hosts
    if not (aws or listed):
        raise Invalid(f"SubscribeURL host {parts.netloc[:100]!r} is not an SNS endpoint "
                      "(https://sns.<region>.amazonaws.com) nor listed in AIOPS_SNS_CONFIRM_HOSTS; not fetched")
    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise Unavailable(f"could not reach SNS to confirm the subscription: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise Unavailable(f"SNS answered {response.status_code} to the confirmation; SNS will send it again")
    if response.status_code >= 300:
        raise Invalid(f"SNS refused the confirmation ({response.status_code}): {response.text[:200]}")
    return {"sns": kind, "topic": topic, "confirmed": True}
