"""One real moto server for the whole test session; fleets are cheap enough to make per test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sim.cloud import MotoHandle, start_moto
from sim.fleet import Fleet

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

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body or b"null")}
                )
                status = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                data = b'{"status": "accepted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/api/v1/ingest/alertmanager"

    def payloads(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()
