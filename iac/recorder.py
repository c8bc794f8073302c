"""Record boto3 calls as CloudTrail-format events (botocore event hooks).

The simulator and the drift injector use it to produce realistic traces: a console-like or a
Terraform user agent, the caller's ARN, EC2's ``items`` wrappers and S3's ``bucketName`` as in
real CloudTrail, so the same rules read real and simulated traces.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONSOLE_UA = "AWS Internal"
CLI_UA = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 prompt/off command/ec2"
TERRAFORM_UA = ("APN/1.0 HashiCorp/1.0 Terraform/1.0.3 (+https://www.terraform.io) "
                "terraform-provider-aws/4.67.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.44")

EC2_RENAMES = {"Resources": "resourcesSet", "Tags": "tagSet", "InstanceIds": "instancesSet",
               "IpPermissions": "ipPermissions", "IpRanges": "ipRanges", "Ipv6Ranges": "ipv6Ranges",
               "UserIdGroupPairs": "groups", "PrefixListIds": "prefixListIds", "GroupIds": "groupSet",
               "TagSpecifications": "tagSpecificationSet", "Description": "groupDescription"}


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _ec2_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Value"}:
            return {"value": value["Value"]}
        return {_ec2_key(k): _ec2_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        if key == "InstanceIds":
            return {"items": [{"instanceId": v} for v in value]}
        if key == "Resources":
            return {"items": [{"resourceId": v} for v in value]}
        if key == "GroupIds":
            return {"items": [{"groupId": v} for v in value]}
        return {"items": [_ec2_value(key, v) for v in value]}
    return value


def _ec2_key(key: str) -> str:
    return EC2_RENAMES.get(key, _lower_first(key))


def cloudtrail_request(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """boto3 parameters -> CloudTrail ``requestParameters`` in the service's own spelling."""
    if service == "ec2":
        out = {}
        for k, v in params.items():
            key = "groupDescription" if (k == "Description" and operation == "CreateSecurityGroup") else (
                "description" if k == "Description" else _ec2_key(k))
            out[key] = _ec2_value(k, v)
        return out
    if service == "s3":
        out = {}
        for k, v in params.items():
            if k == "Bucket":
                out["bucketName"] = v
            elif k == "Policy":
                try:
                    out["bucketPolicy"] = json.loads(v)
                except (TypeError, json.JSONDecodeError):
                    out["bucketPolicy"] = v
            elif k == "Tagging":
                out["Tagging"] = {"TagSet": {"Tag": list(v.get("TagSet", []))}}
            elif k == "ServerSideEncryptionConfiguration":
                out[k] = {"Rule": v.get("Rules", [])}
            elif k in ("Body",):
                continue
            else:
                out[k] = v
        return out

    def convert(v: Any) -> Any:
        if isinstance(v, dict):
            return {_lower_first(k): convert(x) for k, x in v.items()}
        if isinstance(v, list):
            return [convert(x) for x in v]
        if isinstance(v, bytes | bytearray):
            return None
        return v

    out = convert(params)
    if service == "lambda" and "tags" in out and isinstance(params.get("Tags"), dict):
        out["tags"] = dict(params["Tags"])  # lambda tags are a plain map: keep the keys as written
    return out


def cloudtrail_response(service: str, operation: str, parsed: dict[str, Any]) -> dict[str, Any] | None:
    parsed = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
    if service == "ec2":
        if operation == "RunInstances":
            return {"instancesSet": {"items": [{"instanceId": i["InstanceId"], "imageId": i.get("ImageId"),
                                                "instanceType": i.get("InstanceType"), "subnetId": i.get("SubnetId")}
                                               for i in parsed.get("Instances", [])]}}
        if operation == "CreateSecurityGroup":
            return {"_return": True, "groupId": parsed.get("GroupId")}
        return {"_return": True}
    text = json.dumps(parsed, default=str)
    if len(text) > 4000:
        return None
    return json.loads(text)


class Recorder:
    """Hooks a boto3 session; every call made through its clients becomes a CloudTrail record."""

    def __init__(self, session: Any, *, user_agent: str = CONSOLE_UA,
                 principal_arn: str = "arn:aws:iam::123456789012:user/operator",
                 clock: Callable[[], datetime] | None = None, region: str = "us-east-1"):
        self.session = session
        self.user_agent = user_agent
        self.principal_arn = principal_arn
        self.clock = clock or (lambda: datetime.now(UTC))
        self.region = region
        self.records: list[dict[str, Any]] = []
        self._pending: dict[int, dict[str, Any]] = {}
        self.enabled = True
        events = session._session.get_component("event_emitter") if hasattr(session, "_session") else session.events
        events.register("provide-client-params.*.*", self._before)
        events.register("after-call.*.*", self._after)
        events.register("after-call-error.*.*", self._after_error)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["nsync_params"] = dict(params)

    def _record(self, model: Any, context: dict[str, Any], parsed: dict[str, Any] | None, error: str) -> None:
        if not self.enabled:
            return
        service = model.service_model.endpoint_prefix
        op = model.name
        params = context.get("nsync_params", {})
        region = self.region
        rec = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "arn": self.principal_arn, "accountId": "123456789012",
                             "principalId": "AIDANSYNCSIMULATED"},
            "eventTime": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": op,
            "awsRegion": region,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": self.user_agent,
            "requestParameters": cloudtrail_request(service, op, params),
            "responseElements": None if error else cloudtrail_response(service, op, parsed or {}),
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": op.startswith(("Describe", "Get", "List", "Head")),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": "123456789012",
            "eventCategory": "Management",
        }
        if error:
            rec["errorCode"] = error
            rec["errorMessage"] = error
        self.records.append(rec)

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        error = (parsed or {}).get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        self._record(model, context, parsed, error)

    def _after_error(self, model: Any = None, context: dict[str, Any] | None = None, exception: Any = None, **_: Any) -> None:
        if model is not None and context is not None:
            self._record(model, context, None, type(exception).__name__ if exception else "Error")

    def write(self, path: str | Path, *, fmt: str = "records") -> Path:
        """Write the trace as CloudTrail does (``records``, optionally ``.gz``), an array or JSON lines."""
        path = Path(path)
        if fmt == "jsonl":
            data = "\n".join(json.dumps(r) for r in self.records) + "\n"
        elif fmt == "array":
            data = json.dumps(self.records)
        else:
            data = json.dumps({"Records": self.records})
        raw = data.encode()
        path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
        return path
