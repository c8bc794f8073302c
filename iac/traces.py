"""Read CloudTrail in the formats CloudTrail itself writes, and normalize to ``TraceRecord``.

Sources: S3 log files (``{"Records": [...]}``, gzipped or not), JSON arrays, single-event JSON
(EventBridge/console exports), JSON lines, directories of those, an S3 prefix, and the
LookupEvents API (paged). A record we cannot normalize is counted, never raised: a trace is
operator data and one odd event must not stop a reconciliation.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iac.models import TraceRecord

log = logging.getLogger(__name__)

TRACE_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz")


class TraceSourceError(ValueError):
    """The trace source itself is unusable (a missing path): an error, never an empty trace."""


@dataclass
class TraceReadReport:
    """What a read produced besides records: why some input was not usable."""

    files: int = 0
    malformed: Counter = field(default_factory=Counter)


def parse_time(value: Any) -> datetime:
    """CloudTrail writes ``2024-08-01T12:23:55Z``; LookupEvents gives datetimes; be lenient."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value or "").strip()
    if not text:
        return datetime.fromtimestamp(0, tz=UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _principal(identity: Any) -> str:
    if not isinstance(identity, dict):
        return ""
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    return str(issuer or identity.get("arn") or identity.get("principalId") or "")


def normalize(raw: Any) -> TraceRecord:
    """One CloudTrail event dict -> TraceRecord; raises ValueError when it is not an event."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        raise ValueError(f"not an event object: {type(raw).__name__}")
    if "CloudTrailEvent" in raw and "eventName" not in raw:  # LookupEvents item
        inner = raw["CloudTrailEvent"]
        return normalize(json.loads(inner) if isinstance(inner, str) else inner)
    if isinstance(raw.get("detail"), dict) and "eventName" not in raw and "eventName" in raw["detail"]:
        return normalize(raw["detail"])  # EventBridge "AWS API Call via CloudTrail" envelope
    name = raw.get("eventName")
    source = raw.get("eventSource")
    if not name or not source:
        raise ValueError("event without eventName/eventSource")
    request = raw.get("requestParameters")
    response = raw.get("responseElements")
    read_only = raw.get("readOnly")
    if isinstance(read_only, str):
        read_only = read_only.lower() == "true"
    return TraceRecord(
        event_id=str(raw.get("eventID") or raw.get("requestID") or ""),
        event_time=parse_time(raw.get("eventTime")),
        event_source=str(source),
        event_name=str(name),
        region=str(raw.get("awsRegion") or ""),
        user_agent=str(raw.get("userAgent") or ""),
        principal_arn=_principal(raw.get("userIdentity")),
        read_only=read_only if isinstance(read_only, bool) else None,
        error_code=str(raw.get("errorCode") or ""),
        request=request if isinstance(request, dict) else {},
        response=response if isinstance(response, dict) else {},
        resources=[r for r in raw.get("resources") or [] if isinstance(r, dict)],
        raw=raw,
    )


def _events_in_document(doc: Any) -> Iterator[Any]:
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        yield from doc["Records"]
    elif isinstance(doc, dict) and isinstance(doc.get("Events"), list):  # saved LookupEvents page
        yield from doc["Events"]
    elif isinstance(doc, list):
        yield from doc
    else:
        yield doc


def iter_raw_from_bytes(data: bytes, *, name: str = "<bytes>", report: TraceReadReport | None = None
                        ) -> Iterator[Any]:
    """Raw events of one blob: gzip or not, one JSON document or JSON lines.

    A damaged blob keeps what is good in it: a ``Records`` document or array cut short (a copy
    interrupted, a log file still being written) yields every event before the cut, and a bad
    JSON line is skipped; either is counted in ``report`` with the file and where it broke.
    """
    report = report if report is not None else TraceReadReport()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError) as exc:  # a truncated gzip stream: take what decompresses
            report.malformed[f"truncated gzip {name}: {type(exc).__name__}"] += 1
            data = _partial_gunzip(data)
    text = data.decode("utf-8-sig", errors="strict").strip()
    if not text:
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        first = text.split("\n", 1)[0].strip()
        if _is_json(first) or not text.startswith(("{", "[")):
            yield from _json_lines(text, name=name, report=report)
        else:
            yield from _streamed(text, name=name, report=report)
        return
    yield from _events_in_document(doc)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _json_lines(text: str, *, name: str, report: TraceReadReport) -> Iterator[Any]:
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            report.malformed[f"bad JSON line in {name}: line {number}, column {exc.colno}: {exc.msg}"] += 1
            continue
        yield from _events_in_document(doc)


def _streamed(text: str, *, name: str, report: TraceReadReport) -> Iterator[Any]:
    """Events of a ``{"Records": [...]}`` document or a JSON array, one by one, up to where it breaks."""
    if text.startswith("["):
        at = 1
    else:
        found = re.search(r'"(Records|Events)"\s*:\s*\[', text)
        if found is None:
            report.malformed[f"unreadable file {name}: no Records array before the damage"] += 1
            return
        at = found.end()
    decoder = json.JSONDecoder()
    kept = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] == "]":
            break
        try:
            event, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            break
        kept += 1
        yield event
    if at < len(text) and text[at] == "]":
        return
    line = text.count("\n", 0, at) + 1
    report.malformed[f"truncated file {name} at offset {at} (line {line}); kept the {kept} event(s) before it"] += 1


def _partial_gunzip(data: bytes) -> bytes:
    """What a truncated gzip stream decompresses to before it ends."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return decompressor.decompress(data)
    except zlib.error:
        return b""


def _normalize_all(raws: Iterable[Any], report: TraceReadReport) -> Iterator[TraceRecord]:
    for raw in raws:
        try:
            yield normalize(raw)
        except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            report.malformed[type(exc).__name__ + ": " + str(exc)[:60]] += 1


def read_path(path: str | Path, *, report: TraceReadReport | None = None) -> list[TraceRecord]:
    """Every record in a file or (recursively) a directory of trace files, sorted by time."""
    report = report if report is not None else TraceReadReport()
    path = Path(path)
    if not path.exists():
        raise TraceSourceError(f"trace path does not exist: {path}")
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.name.endswith(TRACE_SUFFIXES)
    )
    records: list[TraceRecord] = []
    for file in files:
        report.files += 1
        try:
            records.extend(_normalize_all(iter_raw_from_bytes(file.read_bytes(), name=str(file), report=report),
                                          report))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
            report.malformed[f"unreadable file {file.name}: {type(exc).__name__}"] += 1
    records.sort(key=lambda r: r.event_time)
    return records


def read_s3_prefix(
    url: str, *, s3_client: Any, since: datetime | None = None, report: TraceReadReport | None = None
) -> list[TraceRecord]:
    """Every trace object under ``s3://bucket/prefix`` (the CloudTrail bucket layout)."""
    report = report if report is not None else TraceReadReport()
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    records: list[TraceRecord] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if since is not None and obj.get("LastModified") and obj["LastModified"] < since:
                continue
            report.files += 1
            body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            try:
                records.extend(_normalize_all(iter_raw_from_bytes(body, name=f"s3://{bucket}/{obj['Key']}", report=report), report))
            except (json.JSONDecodeError, UnicodeDecodeError, EOFError) as exc:
                report.malformed[f"unreadable object: {type(exc).__name__}"] += 1
    records.sort(key=lambda r: r.event_time)
    return records


def read_lookup_events(
    cloudtrail_client: Any,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    read_only: bool = False,
    report: TraceReadReport | None = None,
) -> list[TraceRecord]:
    """Management events through the LookupEvents API, following NextToken pages.

    ``read_only=False`` asks CloudTrail for write events only, which is all drift needs.
    """
    report = report if report is not None else TraceReadReport()
    kwargs: dict[str, Any] = {"MaxResults": 50}
    if not read_only:
        kwargs["LookupAttributes"] = [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}]
    if since is not None:
        kwargs["StartTime"] = since
    if until is not None:
        kwargs["EndTime"] = until
    records: list[TraceRecord] = []
    while True:
        page = cloudtrail_client.lookup_events(**kwargs)
        records.extend(_normalize_all(page.get("Events", []), report))
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    records.sort(key=lambda r: r.event_time)
    return records


def read_source(
    source: str,
    *,
    since: datetime | None = None,
    session: Any = None,
    endpoint_url: str | None = None,
    report: TraceReadReport | None = None,
) -> list[TraceRecord]:
    """Dispatch on the workspace's trace source string; filter to records after ``since``."""
    report = report if report is not None else TraceReadReport()
    if source.startswith("s3://"):
        client = session.client("s3", endpoint_url=endpoint_url)
        records = read_s3_prefix(source, s3_client=client, since=None, report=report)
    elif source == "lookup-events":
        client = session.client("cloudtrail", endpoint_url=endpoint_url)
        records = read_lookup_events(client, since=since, report=report)
    else:
        records = read_path(source, report=report)
    if since is not None:
        records = [r for r in records if r.event_time > since]
    return records
