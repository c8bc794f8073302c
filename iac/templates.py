"""Learned call templates: how an API call the rule table does not know maps to attributes.

Both the knowledge base (from approved reconciliations) and the LLM produce the same small JSON
shape, so a template the LLM proposed once and a reviewer approved is served by the KB next time
(no tokens spent twice).

    {"event": "PutBucketAccelerateConfiguration", "service": "s3",
     "resource_type": "aws_s3_bucket_accelerate_configuration", "id_field": "bucketName",
     "mappings": [{"attribute": "status", "request_path": "AccelerateConfiguration.Status"}]}
"""

from __future__ import annotations

from typing import Any

from iac.models import Intent, TraceRecord
from iac.rules import get


def read_path(request: dict[str, Any], dotted: str) -> Any:
    value: Any = request
    for part in dotted.split("."):
        value = get(value, part)
        if value is None:
            return None
    return value


def apply_template(template: dict[str, Any], record: TraceRecord, *, source: str) -> list[Intent] | None:
    """Intents of ``record`` under ``template``; None when the template does not fit the record."""
    if template.get("event") != record.event_name:
        return None
    ident = read_path(record.request, str(template.get("id_field", "")))
    if not ident:
        return None
    rtype = str(template.get("resource_type") or "")
    kind = "sub_set" if rtype.startswith("aws_s3_bucket_") else "set"
    out = []
    for m in template.get("mappings") or []:
        value = read_path(record.request, str(m.get("request_path", "")))
        if value is None or not m.get("attribute"):
            continue
        out.append(Intent(kind=kind, address=None, resource_type=rtype, attribute=str(m["attribute"]),
                          value=value, resource_id=str(ident), source=source, records=[record]))
    return out or None


def pattern_text(record: TraceRecord) -> str:
    """What the KB embeds: the call's name, service and request shape (not its values)."""

    def shape(d: Any, prefix: str = "") -> list[str]:
        if isinstance(d, dict):
            out = []
            for k, v in d.items():
                out.extend(shape(v, f"{prefix}{k}."))
            return out
        return [prefix.rstrip(".")]

    return f"{record.service} {record.event_name} " + " ".join(sorted(shape(record.request)))
