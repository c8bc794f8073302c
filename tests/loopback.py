"""Real HTTP servers on loopback for the things we cannot run here (Slack, PagerDuty, an LLM, a probe
API, webhook receivers): the answering and the serving written once.

WHY one module: every stand-in answered JSON with the same five lines and started the same
thread; a fix to one (keep-alive, a quiet log) reached only that one.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    """A request handler that reads bodies and answers JSON or bytes; quiet in the test log."""

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def send_bytes(self, status: int, data: bytes = b"", *, content_type: str | None = None,
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, answer: Any, *, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(answer).encode(), content_type="application/json; charset=utf-8",
                        headers=headers)

    def log_message(self, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler], *, port: int = 0) -> ThreadingHTTPServer:
    """A threading server for ``handler`` on 127.0.0.1 (any free port unless given), serving in a daemon
    thread; stop it with ``stop``."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def base_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"
