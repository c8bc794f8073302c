"""Amazon SNS HTTP(S) subscriptions: confirm a ``SubscriptionConfirmation`` so CloudWatch alarms can flow in.

An SNS topic delivers nothing to a new HTTP endpoint until the endpoint fetches the message's
``SubscribeURL``. Why the host check: the request that carries that URL is unauthenticated, so
fetching any URL it names would let anyone make this server call an address of their choosing
(SSRF). Only ``https://sns.<region>.amazonaws.com[.cn]`` is fetched, plus the hosts an operator
lists in ``sns_confirm_hosts`` (a local SNS emulator).

Every SNS message (notification or confirmation) is signed by SNS; `verify_message` checks it as
AWS documents: the fields of the message type joined as ``name\nvalue\n`` in a fixed order, an RSA
PKCS#1 v1.5 signature with SHA1 (``SignatureVersion`` 1) or SHA256 (2), under the certificate at
``SigningCertURL``, which must be ``https://sns.<region>.amazonaws.com[.cn]/....pem`` (never the
emulator hosts: a certificate from anywhere else proves nothing). Certificates are cached by URL.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import httpx

from services.errors import Invalid, Unavailable

SUBSCRIPTION_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
_AWS_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def is_subscription_message(payload: Any) -> TypeGuard[dict]:
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


# ---------------------------------------------------------------------------- message signatures

SNS_MESSAGE_TYPES = ("Notification", *SUBSCRIPTION_TYPES)
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
CertFetcher = Callable[[str], bytes]


class SnsSignatureError(ValueError):
    """An SNS message whose signature does not hold; the text says why (403 at the API)."""


def is_sns_message(payload: Any) -> TypeGuard[dict]:
    """An SNS HTTP(S) delivery (not a Lambda ``Records`` event): by its type alone, so a forger cannot skip
    the check by leaving a field out."""
    return isinstance(payload, dict) and payload.get("Type") in SNS_MESSAGE_TYPES


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text SNS signs: each present field of the type's list as ``name\nvalue\n``."""
    fields = _SIGNED_FIELDS.get(message.get("Type"))  # type: ignore[arg-type]
    if fields is None:
        raise SnsSignatureError(f"unknown SNS message type {str(message.get('Type'))[:40]!r}")
    parts = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":  # the only optional signed field
                continue
            raise SnsSignatureError(f"SNS {message['Type']} without {name}")
        if not isinstance(value, str):
            raise SnsSignatureError(f"SNS field {name} is not a string")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def check_cert_url(url: Any) -> str:
    """Only SNS's own certificate URLs: https, ``sns.<region>.amazonaws.com[.cn]``, a ``.pem`` path."""
    if not isinstance(url, str) or not url:
        raise SnsSignatureError("SNS message without SigningCertURL")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise SnsSignatureError(f"SigningCertURL {url[:100]!r} is not a URL") from None
    if parts.scheme != "https" or not _AWS_SNS_HOST.match(host) or port not in (None, 443) or parts.username:
        raise SnsSignatureError(f"SigningCertURL {url[:100]!r} is not on https://sns.<region>.amazonaws.com")
    if not parts.path.endswith(".pem"):
        raise SnsSignatureError(f"SigningCertURL {url[:100]!r} is not a .pem certificate")
    return url


def fetch_certificate(url: str, *, timeout_s: float = 10.0) -> bytes:
    """GET the certificate (the URL was checked first); an unreachable SNS is `Unavailable` (SNS retries)."""
    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise Unavailable(f"could not fetch the SNS signing certificate: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SnsSignatureError(f"SigningCertURL answered {response.status_code}")
    return response.content


_cert_cache: dict[str, Any] = {}
_cert_lock = threading.Lock()
CERT_CACHE_SIZE = 32


def _public_key(url: str, fetch: CertFetcher, *, now: datetime) -> Any:
    from cryptography import x509

    with _cert_lock:
        cert = _cert_cache.get(url)
    if cert is None:
        try:
            cert = x509.load_pem_x509_certificate(fetch(url))
        except ValueError:
            raise SnsSignatureError("SigningCertURL did not return a PEM certificate") from None
        with _cert_lock:
            if len(_cert_cache) >= CERT_CACHE_SIZE:
                _cert_cache.pop(next(iter(_cert_cache)))
            _cert_cache[url] = cert
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SnsSignatureError("the SNS signing certificate is not valid now")
    return cert.public_key()


def verify_message(message: dict[str, Any], *, fetch: CertFetcher = fetch_certificate,
                   now: datetime | None = None) -> None:
    """Raise `SnsSignatureError` unless SNS signed this message (SignatureVersion 1 = SHA1, 2 = SHA256)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    signature = message.get("Signature")
    if not isinstance(signature, str) or not signature:
        raise SnsSignatureError("SNS message without Signature")
    version = str(message.get("SignatureVersion") or "")
    algorithm = {"1": hashes.SHA1, "2": hashes.SHA256}.get(version)
    if algorithm is None:
        raise SnsSignatureError(f"unsupported SignatureVersion {version[:10]!r} (SNS uses 1 or 2)")
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        raise SnsSignatureError("Signature is not base64") from None
    text = string_to_sign(message)
    key = _public_key(check_cert_url(message.get("SigningCertURL")), fetch, now=now or datetime.now(UTC))
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsSignatureError("the SNS signing certificate does not hold an RSA key")
    try:
        key.verify(raw, text, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SnsSignatureError("Signature does not match the message (forged or altered)") from None
