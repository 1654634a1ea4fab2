"""ASGI middleware that caps request bodies: by Content-Length up front, and by counting the bytes received (so
that chunked bodies without a Content-Length are capped too)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge, error_response


class BodySizeLimit:
    """413 for any HTTP request whose body is larger than `limit_for(path)` bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = content_length(scope)
        if declared is not None and declared > limit:
            await _reject(limit, scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _counting(receive, limit), send_tracking)
        except PayloadTooLarge:
            if started:
                raise
            await _reject(limit, scope, receive, send)


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(limit)
        return message

    return counted


def content_length(scope: Scope) -> int | None:
    """The Content-Length a request declares; None when it has none, or one that is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, "payload_too_large", f"request body exceeds the limit of {limit} bytes",
                              {"field": "body", "limit": limit}, headers={"Connection": "close"})
    await response(scope, receive, send)
