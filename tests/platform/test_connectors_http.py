"""HttpTelemetry.health against a real HTTP probe API on loopback that follows the documented contract."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.connectors.http import HttpTelemetry


@pytest.fixture
def probe_api() -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """``GET /health?target=T`` answers ``answers[T]`` (404 for an unknown target), as a probe API would."""
    answers: dict[str, dict[str, Any]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            target = self.path.partition("target=")[2].partition("&")[0]
            body = answers.get(target)
            data = json.dumps(body if body is not None else {"error": "unknown target"}).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_live_component_with_a_breach_still_listed_is_not_healthy(probe_api) -> None:
    url, answers = probe_api
    telemetry = HttpTelemetry(url)
    # a source whose "healthy" is liveness only: the node answers, its disk does not
    answers["web-1"] = {"target": "web-1", "healthy": True, "breaches": ["web-1: disk_io_errors=12 > 0"]}
    assert telemetry.health("web-1") is False
    answers["web-1"] = {"target": "web-1", "healthy": True, "breaches": []}
    assert telemetry.health("web-1") is True
    answers["web-2"] = {"target": "web-2", "healthy": False, "breaches": []}
    assert telemetry.health("web-2") is False


def test_an_answer_without_a_verdict_or_no_answer_is_cannot_tell(probe_api) -> None:
    url, answers = probe_api
    telemetry = HttpTelemetry(url)
    answers["web-3"] = {"target": "web-3", "latest": {}}
    assert telemetry.health("web-3") is None
    assert telemetry.health("not-there") is None  # 404
