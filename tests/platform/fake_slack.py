"""Loopback stand-ins that speak the real protocols: Slack's Web API subset and PagerDuty Events v2.

Slack: ``POST /api/chat.postMessage`` and ``/api/chat.update`` with a bearer token, JSON or form
bodies, answered like Slack (HTTP 200 ``{"ok": true, "channel": ..., "ts": ...}``; errors as
``{"ok": false, "error": ...}``: ``invalid_auth``, ``channel_not_found``, ``thread_not_found``,
``message_not_found``; a rate limit as HTTP 429 with ``Retry-After`` and ``error: ratelimited``).
PagerDuty: ``POST /v2/enqueue`` answered 202 ``{"status": "success", "message": "Event processed",
"dedup_key": ...}``, 400 for a body without routing key or a bad action.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from tests import loopback


class FakeSlack:
    def __init__(self, *, token: str, channels: set[str], ratelimit_first: int = 0, retry_after: int = 1) -> None:
        self.token, self.channels = token, channels
        self.ratelimit_left, self.retry_after = ratelimit_first, retry_after
        self.mode: str | int = "ok"  # or an HTTP status to answer every call with (an outage: 503)
        self.calls: list[dict[str, Any]] = []  # every request, answered or refused, in arrival order
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> the current message
        self._lock = threading.Lock()
        self._seq = 0
        fake = self

        class Handler(loopback.Handler):
            def do_POST(self):  # noqa: N802
                status, answer, headers = fake.handle(self.path, dict(self.headers), self.body())
                self.send_json(status, answer, headers=headers)

        self.server = loopback.serve(Handler)
        self.base_url = f"{loopback.base_url(self.server)}/api/"

    def close(self) -> None:
        loopback.stop(self.server)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict]:
        kind = (headers.get("Content-Type") or headers.get("content-type") or "").split(";")[0]
        if kind == "application/json":
            args = json.loads(raw or b"{}")
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if isinstance(args.get("blocks"), str):
                args["blocks"] = json.loads(args["blocks"])
        method = path.rsplit("/", 1)[-1]
        with self._lock:
            call = {"method": method, "args": args, "at": time.monotonic()}
            self.calls.append(call)
            auth = headers.get("Authorization") or headers.get("authorization")
            if auth != f"Bearer {self.token}":
                return self._error(call, 200, "invalid_auth")
            if self.mode != "ok":
                return self._error(call, int(self.mode), "service_unavailable")
            if self.ratelimit_left > 0:
                self.ratelimit_left -= 1
                return self._error(call, 429, "ratelimited", {"Retry-After": str(self.retry_after)})
            channel = args.get("channel")
            if channel not in self.channels:
                return self._error(call, 200, "channel_not_found")
            if method == "chat.postMessage":
                thread_ts = args.get("thread_ts")
                if thread_ts and (channel, thread_ts) not in self.messages:
                    return self._error(call, 200, "thread_not_found")
                self._seq += 1
                ts = f"{int(time.time())}.{self._seq:06d}"
                self.messages[(channel, ts)] = {**args, "ts": ts}
                call["answer"] = {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}}
                return 200, call["answer"], {}
            if method == "chat.update":
                key = (channel, args.get("ts"))
                if key not in self.messages:
                    return self._error(call, 200, "message_not_found")
                self.messages[key] = {**self.messages[key], **args}
                call["answer"] = {"ok": True, "channel": channel, "ts": args["ts"], "text": args.get("text")}
                return 200, call["answer"], {}
            return self._error(call, 200, "unknown_method")

    @staticmethod
    def _error(call: dict, status: int, error: str, headers: dict | None = None) -> tuple[int, dict, dict]:
        call["answer"] = {"ok": False, "error": error}
        call["status"] = status
        return status, call["answer"], headers or {}

    # views of what was recorded
    def ok_calls(self, method: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["method"] == method and c.get("answer", {}).get("ok")]

    def parents(self, channel: str) -> list[dict[str, Any]]:
        return [m for (ch, _), m in self.messages.items() if ch == channel and not m.get("thread_ts")]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return sorted((m for (ch, _), m in self.messages.items() if ch == channel and m.get("thread_ts") == thread_ts),
                      key=lambda m: m["ts"])


class FakePagerDuty:
    """Records Events v2 enqueue calls; answers like PagerDuty."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        self.mode: str | int = "ok"  # or an HTTP status to answer every call with (an outage: 503)
        fake = self

        class Handler(loopback.Handler):
            def do_POST(self):  # noqa: N802
                raw = self.body()
                if fake.mode != "ok":
                    fake.refused += 1
                    self.send_bytes(int(fake.mode))
                    return
                try:
                    body = json.loads(raw)
                    ok = (self.path == "/v2/enqueue" and body.get("routing_key")
                          and body.get("event_action") in {"trigger", "acknowledge", "resolve"}
                          and (body["event_action"] == "trigger" or body.get("dedup_key")))
                except ValueError:
                    body, ok = None, False
                if ok:
                    dedup = body.get("dedup_key") or uuid.uuid4().hex
                    fake.events.append(body)
                    status, answer = 202, {"status": "success", "message": "Event processed", "dedup_key": dedup}
                else:
                    status, answer = 400, {"status": "invalid event", "message": "Event object is invalid",
                                           "errors": ["bad body"]}
                self.send_json(status, answer)

        self.server = loopback.serve(Handler)
        self.url = f"{loopback.base_url(self.server)}/v2/enqueue"

    def close(self) -> None:
        loopback.stop(self.server)
