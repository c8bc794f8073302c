"""One real moto server for the whole test session; fleets are cheap enough to make per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.cloud import MotoHandle, start_moto
from sim.fleet import Fleet
from tests import loopback

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sim"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoHandle]:
    handle = start_moto()
    yield handle
    handle.stop()


@pytest.fixture()
def fleet(moto_server: MotoHandle) -> Fleet:
    """A fresh 4-node fleet (its own cluster name, so fleets on the shared server never mix)."""
    return Fleet.provision(moto_server.endpoint_url, nodes=4, seed=11)


class Receiver:
    """A tiny real HTTP server standing in for the platform's ingest endpoint.

    ``script`` is a list of status codes answered in turn (the last one repeats).
    """

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [202])
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(loopback.Handler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.body()
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body or b"null")}
                )
                status = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                self.send_json(status, {"status": "accepted"})

        self._httpd = loopback.serve(Handler)

    @property
    def url(self) -> str:
        return f"{loopback.base_url(self._httpd)}/api/v1/ingest/alertmanager"

    def payloads(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    def stop(self) -> None:
        loopback.stop(self._httpd)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()
