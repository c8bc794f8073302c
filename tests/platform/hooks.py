"""A real HTTP webhook receiver on loopback whose answer can be switched (down, 5xx, 4xx, up) mid-test."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

from sim.cloud import free_port
from tests import loopback


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

        class Handler(loopback.Handler):
            def do_POST(self):  # noqa: N802
                body = self.body()
                code = 200 if owner._mode == "ok" else int(owner._mode)
                with owner._lock:
                    owner.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body, "status": code})
                self.send_bytes(code, b"ok" if code == 200 else b"nope")

            def do_GET(self):  # noqa: N802  (SNS SubscribeURL confirmations)
                code = 200 if owner._mode == "ok" else int(owner._mode)
                with owner._lock:
                    owner.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": b"", "status": code, "path": self.path, "method": "GET"})
                self.send_bytes(code, b"<ConfirmSubscriptionResponse/>" if code == 200 else b"nope")

        self._server = loopback.serve(Handler, port=self.port)

    def _stop(self) -> None:
        if self._server is not None:
            loopback.stop(self._server)
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
