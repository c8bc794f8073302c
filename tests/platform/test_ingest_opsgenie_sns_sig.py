"""Opsgenie webhook bodies from a fixture to an incident, and SNS message signatures (versions 1 and 2).

SNS: messages are signed here with a locally made RSA key and certificate (`sns_signing.LocalSns`),
served through an injected fetcher under an SNS certificate URL; every refusal is checked to
happen before anything is fetched or stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.ingest.sns import SnsSignatureError, verify_message
from tests.conftest import FIXTURES, install_settings
from tests.platform.sns_signing import LocalSns

OPSGENIE = json.loads((FIXTURES / "alerts" / "opsgenie_webhook_create.json").read_text())
SNS_CONFIRM = json.loads((FIXTURES / "alerts" / "sns_subscription_confirmation.json").read_text())
ALARM = {"AlarmName": "HighCPU", "AlarmDescription": "cpu above 90%", "NewStateValue": "ALARM",
         "NewStateReason": "Threshold Crossed: 1 datapoint [97.0] was greater than 90.0", "Region": "us-east-1",
         "StateChangeTime": "2026-11-30T22:00:00.000+0000",
         "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/EC2",
                     "Dimensions": [{"name": "InstanceId", "value": "i-0abc"}]}}
NOTIFICATION = {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:alarms", "Subject": "ALARM: \"HighCPU\"",
                "Message": json.dumps(ALARM), "Timestamp": "2026-11-30T22:00:01.000Z",
                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False), raise_server_exceptions=False) as test_client:
        yield test_client


def _alerts(client: TestClient, source: str) -> list[dict]:
    return [a for a in client.get("/api/v1/alerts").json()["items"] if a["source"] == source]


def test_opsgenie_create_then_close_by_alias(client):
    answer = client.post("/api/v1/alerts", json=OPSGENIE)
    assert answer.status_code == 202 and len(answer.json()["incidents_opened"]) == 1, answer.text
    [alert] = _alerts(client, "opsgenie")
    assert (alert["name"], alert["status"], alert["severity"]) == ("Checkout p99 latency above 2s", "firing", "high")
    assert (alert["service"], alert["node"], alert["cluster"]) == ("checkout", "ip-10-0-3-17", "prod-eu-1")
    assert alert["summary"].startswith("p99 of checkout requests was 2.7s")
    assert alert["labels"]["team-payments"] == "true" and alert["labels"]["opsgenie_tiny_id"] == "1791"

    # Opsgenie's Close carries the same alert (same alias): it resolves what Create opened
    closed = client.post("/api/v1/alerts", json={**OPSGENIE, "action": "Close"})
    assert closed.status_code == 202 and closed.json()["resolved"] == [alert["id"]]
    assert _alerts(client, "opsgenie")[0]["status"] == "resolved"

    # an action that changes no alert state is refused by name, and nothing is stored
    ack = client.post("/api/v1/alerts", json={**OPSGENIE, "action": "Acknowledge"})
    assert ack.status_code == 422 and "Acknowledge" in ack.json()["detail"]
    untitled = client.post("/api/v1/alerts", json={**OPSGENIE, "alert": {**OPSGENIE["alert"], "message": " "}})
    assert untitled.status_code == 422 and "alert.message" in untitled.json()["detail"]
    bad_tags = client.post("/api/v1/alerts", json={**OPSGENIE, "alert": {**OPSGENIE["alert"], "tags": "a,b"}})
    assert bad_tags.status_code == 422 and "alert.tags" in bad_tags.json()["detail"]
    assert len(_alerts(client, "opsgenie")) == 1


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signatures_verify_and_tampering_fails(version):
    sns = LocalSns()
    signed = sns.sign(NOTIFICATION, version=version)
    verify_message(signed, fetch=sns.fetch)
    verify_message(sns.sign({k: v for k, v in NOTIFICATION.items() if k != "Subject"}, version=version),
                   fetch=sns.fetch)  # Subject is the one optional signed field
    assert sns.fetched == [sns.cert_url], "the certificate is fetched once and cached"
    confirmation = sns.sign({**SNS_CONFIRM}, version=version)
    verify_message(confirmation, fetch=sns.fetch)

    for tampered in ({**signed, "Message": signed["Message"].replace("97.0", "12.0")},
                     {**signed, "TopicArn": "arn:aws:sns:us-east-1:123456789012:other"},
                     {**signed, "SignatureVersion": "1" if version == "2" else "2"},
                     {**confirmation, "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Other"}):
        with pytest.raises(SnsSignatureError, match="does not match"):
            verify_message(tampered, fetch=sns.fetch)
    other_key = LocalSns()
    with pytest.raises(SnsSignatureError, match="does not match"):  # signed by someone else, their cert URL ours
        verify_message({**other_key.sign(NOTIFICATION, version=version), "SigningCertURL": sns.cert_url},
                       fetch=sns.fetch)


@pytest.mark.parametrize("cert_url", [
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-x.pem",
    "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem",
    "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    "https://sns.us-east-1.amazonaws.com/?Action=GetCertificate",
    "https://s3.amazonaws.com/SimpleNotificationService-x.pem",
    "",
])
def test_sns_certificate_url_must_be_an_sns_host(cert_url):
    sns = LocalSns()
    message = {**sns.sign(NOTIFICATION), "SigningCertURL": cert_url}
    with pytest.raises(SnsSignatureError, match="SigningCertURL"):
        verify_message(message, fetch=sns.fetch)
    assert sns.fetched == [], "a certificate URL off SNS's hosts is never fetched"


def test_sns_signature_fields_and_certificate_validity():
    sns = LocalSns()
    signed = sns.sign(NOTIFICATION)
    for broken, reason in [({k: v for k, v in signed.items() if k != "Signature"}, "without Signature"),
                           ({**signed, "Signature": "not base64!"}, "not base64"),
                           ({**signed, "SignatureVersion": "3"}, "unsupported SignatureVersion"),
                           ({k: v for k, v in signed.items() if k != "MessageId"}, "without MessageId")]:
        with pytest.raises(SnsSignatureError, match=reason):
            verify_message(broken, fetch=sns.fetch)
    with pytest.raises(SnsSignatureError, match="not valid now"):
        verify_message(signed, fetch=sns.fetch, now=datetime.now(UTC) + timedelta(days=60))
    garbage = LocalSns()
    garbage.pem = b"<html>not a certificate</html>"
    with pytest.raises(SnsSignatureError, match="PEM"):
        verify_message(garbage.sign(NOTIFICATION), fetch=garbage.fetch)


def test_sns_notifications_through_the_api_need_sns_signature(platform_env):
    from services.api.app import create_app

    sns = LocalSns()
    app = create_app(install_settings(), start_workers=False)
    app.state.sns_cert_fetcher = sns.fetch
    with TestClient(app, raise_server_exceptions=False) as client:
        unsigned = client.post("/api/v1/alerts", json=NOTIFICATION)
        assert unsigned.status_code == 403 and "without Signature" in unsigned.json()["detail"]
        signed = sns.sign(NOTIFICATION, version="1")
        forged = client.post("/api/v1/alerts", json={**signed, "Message": json.dumps({**ALARM, "AlarmName": "Other"})})
        assert forged.status_code == 403 and "does not match" in forged.json()["detail"]
        elsewhere = client.post("/api/v1/alerts", json={**signed, "SigningCertURL": "https://attacker.example/c.pem"})
        assert elsewhere.status_code == 403
        assert client.get("/api/v1/alerts").json()["total"] == 0
        answer = client.post("/api/v1/alerts", content=json.dumps(signed),
                             headers={"content-type": "text/plain; charset=UTF-8",
                                      "x-amz-sns-message-type": "Notification"})
        assert answer.status_code == 202, answer.text
        [alert] = _alerts(client, "cloudwatch")
        assert (alert["name"], alert["node"]) == ("HighCPU", "i-0abc")
        # a signed confirmation whose SubscribeURL was swapped is refused before anything is fetched
        swapped = {**sns.sign(SNS_CONFIRM), "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Evil"}
        refused = client.post("/api/v1/alerts", json=swapped)
        assert refused.status_code == 403
    assert sns.fetched == [sns.cert_url]
