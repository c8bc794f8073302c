"""OTLP/HTTP traces: the real OpenTelemetry SDK exporter posts protobuf to the platform over real HTTP;
the stored spans become call edges with latency and error series, served through the telemetry's
``traces``/``topology``; OTLP/JSON is read too; the window per service stays bounded."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from sqlalchemy import func, select

from agents.diagnosis.case import gather_case
from agents.protocols import NullTelemetry
from services.connectors.fleet import StoredSignals
from services.storage.base import session_scope
from services.traces.models import TraceSpan
from tests.conftest import free_port, install_settings, wait_for


@pytest.fixture
def api(platform_env):
    """The platform API on a real port; yields its base URL."""
    import uvicorn

    from services.api.app import create_app

    install_settings(traces_max_spans_per_service=40)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(start_workers=False), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, message="uvicorn started")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _provider(base: str, service: str, host: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.name": host}))
    exporter = OTLPSpanExporter(endpoint=f"{base}/api/v1/otlp/v1/traces", timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _spans(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count(TraceSpan.id)))


def test_sdk_exporter_spans_become_edges_with_latency_and_errors(api, platform_env):
    url = platform_env["AIOPS_DATABASE_URL"]
    frontend = _provider(api, "frontend", "node-1").get_tracer("test")
    checkout = _provider(api, "checkout", "node-2").get_tracer("test")
    for i in range(10):
        with frontend.start_as_current_span("GET /cart", kind=SpanKind.SERVER):
            with frontend.start_as_current_span("POST checkout", kind=SpanKind.CLIENT) as call:
                with checkout.start_as_current_span("POST /checkout", kind=SpanKind.SERVER,
                                                    context=set_span_in_context(call)) as served:
                    with checkout.start_as_current_span("INSERT orders", kind=SpanKind.CLIENT,
                                                        attributes={"db.system": "postgresql"}):
                        time.sleep(0.002)
                    if i % 5 == 0:  # two of ten checkouts fail
                        served.set_status(Status(StatusCode.ERROR, "boom"))
    assert _spans(url) == 40  # 4 spans x 10 requests, exported one by one over HTTP

    telemetry = StoredSignals(NullTelemetry(), database_url=url)
    topology = telemetry.topology()
    assert topology["edges"] == [["checkout", "postgresql"], ["frontend", "checkout"]]
    assert topology["placement"] == {"frontend": "node-1", "checkout": "node-2"}
    edges = {(e["caller"], e["callee"]): e for e in telemetry.traces("checkout", minutes=5)}
    assert set(edges) == {("frontend", "checkout"), ("checkout", "postgresql")}
    call = edges[("frontend", "checkout")]
    assert call["calls"] == 10 and call["error_rate"] == 0.2
    assert all(v >= 0.002 for _, v in call["latency"])  # the client span covers the db call below it
    assert sum(v for _, v in call["errors"]) > 0 and edges[("checkout", "postgresql")]["error_rate"] == 0
    # the diagnoser's case sees the edges and the neighbour the alert did not name
    case = gather_case(telemetry, {"service": "checkout"}, minutes=5)
    assert {"frontend", "postgresql"} <= set(case["components"])

    # the API serves the same edges
    served = httpx.get(f"{api}/api/v1/traces/edges", params={"target": "frontend", "minutes": 5}).json()
    assert [(e["caller"], e["callee"]) for e in served["edges"]] == [("frontend", "checkout")]


def _json_span(trace: str, span: str, *, start: float, parent: str = "", kind: int = 2, error: bool = False) -> dict:
    return {"traceId": trace, "spanId": span, "parentSpanId": parent, "name": "op", "kind": kind,
            "startTimeUnixNano": str(int(start * 1e9)), "endTimeUnixNano": str(int((start + 0.05) * 1e9)),
            "status": {"code": 2 if error else 0}}


def _json_body(service: str, spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}


def test_otlp_json_and_the_bounded_window(api, platform_env):
    url, now = platform_env["AIOPS_DATABASE_URL"], time.time()
    trace = "5b8efff798038103d269b633813fc60c"
    caller = _json_body("cart", [_json_span(trace, "eee19b7ec3c1b174", start=now, kind=3)])
    callee = _json_body("stock", [_json_span(trace, "eee19b7ec3c1b175", start=now, parent="eee19b7ec3c1b174",
                                             error=True)])
    for body in (caller, callee, callee):
        response = httpx.post(f"{api}/api/v1/otlp/v1/traces", json=body)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert _spans(url) == 2
    edges = StoredSignals(NullTelemetry(), database_url=url).traces("stock", minutes=5)
    assert [(e["caller"], e["callee"], e["error_rate"]) for e in edges] == [("cart", "stock", 1.0)]

    # at most traces_max_spans_per_service (40) per service, newest kept; older than retention dropped
    many = [_json_span(f"{i:032x}", f"{i:016x}", start=now - 100 + i) for i in range(1, 61)]
    old = [_json_span("a" * 32, "b" * 16, start=now - 3 * 3600)]
    assert httpx.post(f"{api}/api/v1/otlp/v1/traces", json=_json_body("busy", many + old)).status_code == 200
    with session_scope(url) as session:
        starts = session.scalars(select(TraceSpan.start).where(TraceSpan.service == "busy")).all()
    assert len(starts) == 40 and min(starts) >= now - 100 + 21 - 1e-3


@pytest.mark.parametrize("body, content_type, status, reason", [
    (b"\x0a\xff\xff", "application/x-protobuf", 422, "not an OTLP"),
    (b"{not json", "application/json", 422, "not JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "01"}]}]}]}',
     "application/json", 422, "is not a hex string"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "01", "spanId": "01"}]}]}]}',
     "application/json", 422, "trace id must be 16 bytes"),
    (b"spans", "text/plain", 415, "OTLP/HTTP takes"),
])
def test_bad_exports_are_problems_with_a_reason(api, body, content_type, status, reason):
    response = httpx.post(f"{api}/api/v1/otlp/v1/traces", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"]


def test_gzip_export_and_a_bomb_is_refused(api, platform_env):
    import gzip
    import json

    now = time.time()
    body = _json_body("zipped", [_json_span("c" * 32, "d" * 16, start=now)])
    ok = httpx.post(f"{api}/api/v1/otlp/v1/traces", content=gzip.compress(json.dumps(body).encode()),
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert ok.status_code == 200
    bomb = httpx.post(f"{api}/api/v1/otlp/v1/traces", content=gzip.compress(b" " * (6 * 1024 * 1024)),
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert bomb.status_code == 422 and "decompressed body exceeds" in bomb.json()["detail"]


def test_counts_and_trimming_on_postgres():
    """On PostgreSQL too: a re-sent batch is counted as duplicates and the per-service cap holds."""
    from services.changes.normalize import normalize
    from services.changes.service import store_changes
    from services.storage.migrate import upgrade
    from services.traces.service import store_spans
    from tests.platform.pgdb import fresh_postgres

    now = time.time()
    spans = [{"trace_id": "a" * 32, "span_id": f"{i:016x}", "parent_span_id": None, "service": "fe", "host": None,
              "name": "x", "kind": 2, "peer": None, "start": now - i, "duration_s": 0.1, "error": False}
             for i in range(5)]
    with fresh_postgres("aiops_otlp") as url:
        upgrade(url)
        with session_scope(url) as session:
            assert store_spans(session, spans, retention_minutes=60, max_per_service=3)["stored"] == 5
        with session_scope(url) as session:
            again = store_spans(session, spans[:3], retention_minutes=60, max_per_service=3)
        assert (again["stored"], again["duplicates"]) == (0, 3) and _spans(url) == 3
        body = [{"component": "be", "id": "1"}, {"component": "be", "id": "2"}]
        with session_scope(url) as session:
            assert store_changes(session, normalize(body))["stored"] == 2
        with session_scope(url) as session:
            assert store_changes(session, normalize(body)) == {"accepted": 2, "stored": 0, "duplicates": 2}
