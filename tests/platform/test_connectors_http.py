"""HttpTelemetry.health against a real HTTP probe API on loopback that follows the documented contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.connectors.http import HttpTelemetry
from tests import loopback


@pytest.fixture
def probe_api() -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """``GET /health?target=T`` answers ``answers[T]`` (404 for an unknown target), as a probe API would."""
    answers: dict[str, dict[str, Any]] = {}

    class Handler(loopback.Handler):
        def do_GET(self) -> None:  # noqa: N802
            target = self.path.partition("target=")[2].partition("&")[0]
            body = answers.get(target)
            self.send_json(200 if body is not None else 404, body if body is not None else {"error": "unknown target"})

    server = loopback.serve(Handler)
    try:
        yield loopback.base_url(server), answers
    finally:
        loopback.stop(server)


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
