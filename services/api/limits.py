"""Request body limit counted while the body streams in, answered as problem+json.

A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked body is
counted as it arrives and refused at the first chunk past the limit, so a 300 MB upload costs
the server at most one limit's worth of memory.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import problem


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = problem(413, f"body of {int(declared)} bytes exceeds {self.max_bytes} bytes",
                               instance=scope.get("path"))
            await response(scope, receive, send)
            return
        total = 0

        async def counted() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.max_bytes:
                    raise HTTPException(413, f"body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)
