"""ASGI layers in front of the routes: the API key, the body size limit, and the request metrics.

They are plain ASGI callables (not Starlette's ``BaseHTTPMiddleware``), so streamed replies pass through
untouched and a client's disconnect still reaches the stream.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from emovec.serve.metrics import Metrics
from emovec.serve.replies import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/health",)
ROUTES = ("/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions")


async def refuse(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer with OpenAI's error body."""
    body = json.dumps(error_body(message, status).model_dump()).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


class Guard:
    """Checks ``Authorization: Bearer <key>`` on every route but ``/health`` (when a key is set) and refuses
    bodies over ``max_body`` bytes (413), whether they announce their length or not.

    Example:
        >>> app = Guard(app, api_key="secret", max_body=1_000_000)
    """

    def __init__(self, app: ASGIApp, api_key: str | None, max_body: int) -> None:
        self.app, self.max_body = app, max_body
        self.key = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.key is not None and scope["path"] not in OPEN_PATHS:
            given = _header(scope, b"authorization") or b""
            if not secrets.compare_digest(given, self.key):
                await refuse(send, 401, "a valid API key is required: send Authorization: Bearer <key>",
                             [(b"www-authenticate", b"Bearer")])
                return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await refuse(send, 413, f"the request body is {int(length)} bytes; allowed: at most {self.max_body}")
            return
        body = await self._read(receive)
        if body is None:
            await refuse(send, 413, f"the request body is over {self.max_body} bytes; allowed: at most "
                                    f"{self.max_body}")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` past the limit."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Observe:
    """Counts requests by route and status and times them to the last byte sent."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = next((r for r in ROUTES if path == r or path.startswith(r + "/")), "other")
        start, status = time.perf_counter(), ["500"]

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self.metrics.requests.labels(route, status[0]).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
