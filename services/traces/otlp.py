"""OTLP/HTTP trace export requests (protobuf or JSON) to flat span records.

JSON follows the OTLP/JSON rules, which differ from protobuf's JSON mapping in one place: trace and
span ids are hex strings, not base64. They are turned into base64 before the standard parser runs.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from services.errors import Invalid

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_SPANS = 20_000
STATUS_ERROR = 2
PEER_KEYS = ("peer.service", "db.system", "messaging.system", "rpc.service", "server.address", "net.peer.name")


def decompress(body: bytes, encoding: str | None, *, limit: int) -> bytes:
    """The body without its ``Content-Encoding`` (gzip, deflate), refusing more than ``limit`` bytes out."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in {"gzip", "deflate"}:
        raise Invalid(f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none")
    try:
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        out = inflater.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise Invalid(f"the body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise Invalid(f"the decompressed body exceeds {limit} bytes")
    return out


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"} \
                    and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode() if value else ""
                except ValueError:
                    raise Invalid(f"{key} {value[:40]!r} is not a hex string (OTLP/JSON ids are hex)") from None
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def parse_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise Invalid(f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None
        return request
    if media == JSON:
        import json

        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Invalid(f"the body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise Invalid("an OTLP/JSON body is an object with resourceSpans")
        try:
            json_format.ParseDict(_hex_ids_to_base64(payload), request, ignore_unknown_fields=True)
        except (json_format.ParseError, binascii.Error, ValueError) as exc:
            raise Invalid(f"the body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
        return request
    raise Invalid(f"Content-Type {content_type!r}: OTLP/HTTP takes {PROTOBUF} or {JSON}")


def _attrs(attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        value = kv.value
        which = value.WhichOneof("value")
        out[kv.key] = getattr(value, which) if which in {"string_value", "int_value", "bool_value",
                                                         "double_value"} else None
    return out


def spans_of(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """One dict per span: ids as hex, service and host from the resource, error from the status."""
    out: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")[:200]
        host = resource.get("host.name") or resource.get("k8s.node.name") or resource.get("host.id")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise Invalid(f"span {span.name[:60]!r} of {service}: trace id must be 16 bytes and span id 8")
                if span.end_time_unix_nano < span.start_time_unix_nano:
                    raise Invalid(f"span {span.name[:60]!r} of {service} ends before it starts")
                attributes = _attrs(span.attributes)
                peer = next((str(attributes[k]) for k in PEER_KEYS if attributes.get(k)), None)
                out.append({
                    "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None, "service": service,
                    "host": str(host)[:200] if host else None, "name": span.name[:300], "kind": int(span.kind),
                    "peer": peer[:200] if peer else None, "start": span.start_time_unix_nano / 1e9,
                    "duration_s": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9,
                    "error": span.status.code == STATUS_ERROR or bool(attributes.get("error.type")),
                })
                if len(out) > MAX_SPANS:
                    raise Invalid(f"more than {MAX_SPANS} spans in one request; export in smaller batches")
    return out


def response(media: str) -> tuple[bytes, str]:
    """An empty ExportTraceServiceResponse (full success) in the request's encoding."""
    message = ExportTraceServiceResponse()
    if media == JSON:
        return b"{}", JSON
    return message.SerializeToString(), PROTOBUF
