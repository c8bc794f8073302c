"""A real HTTP webhook receiver on loopback whose answer can be switched (down, 5xx, 4xx, up) mid-test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sim.cloud import free_port


class Receiver:
    """Records every request; ``mode`` is ``ok`` (200), a status code to answer, or ``down`` (port closed).

    The port stays the same across down/up, like a receiver restarted behind the same URL.
    """

    def __init__(self, mode: str | int = "ok") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._mode: str | int = "down"
        self.set(mode)

    def set(self, mode: str | int) -> None:
        if mode == "down":
            self._stop()
        elif self._server is None:
            self._start()
        self._mode = mode

    def _start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                code = 200 if owner._mode == "ok" else int(owner._mode)
                with owner._lock:
                    owner.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body, "status": code})
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"nope")

            def do_GET(self):  # noqa: N802  (SNS SubscribeURL confirmations)
                code = 200 if owner._mode == "ok" else int(owner._mode)
                with owner._lock:
                    owner.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": b"", "status": code, "path": self.path, "method": "GET"})
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"<ConfirmSubscriptionResponse/>" if code == 200 else b"nope")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self._stop()

    def accepted(self) -> list[dict]:
        """Requests answered 200, with the parsed body."""
        with self._lock:
            return [{**r, "event": json.loads(r["body"])} for r in self.requests if r["status"] == 200]

    def hits(self) -> int:
        with self._lock:
            return len(self.requests)
