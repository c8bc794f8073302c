"""Sign SNS messages the way SNS does, with a key and certificate made here (no AWS account needed).

The certificate is served through an injected fetcher under an SNS-looking URL
(``https://sns.us-east-1.amazonaws.com/SimpleNotificationService-<random>.pem``, one per key, as
AWS names each of its certificates): the URL passes the host check, and the bytes come from this
process instead of AWS.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from services.ingest.sns import string_to_sign


class LocalSns:
    def __init__(self, *, valid_days: int = 30, not_before_days: int = -1) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + timedelta(days=not_before_days))
                .not_valid_after(now + timedelta(days=valid_days)).sign(self.key, hashes.SHA256()))
        self.pem = cert.public_bytes(serialization.Encoding.PEM)
        self.fetched: list[str] = []
        self.cert_url = f"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{uuid.uuid4().hex}.pem"

    def fetch(self, url: str) -> bytes:
        """The injected fetcher: records what was asked and answers with this certificate."""
        self.fetched.append(url)
        return self.pem

    def sign(self, message: dict, *, version: str = "2", cert_url: str | None = None) -> dict:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": cert_url or self.cert_url}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
        return {**signed, "Signature": base64.b64encode(signature).decode()}
