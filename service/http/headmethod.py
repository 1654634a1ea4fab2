"""HEAD answered wherever GET is (RFC 9110: the same status and headers, no body): FastAPI routes GET only. The
streamed downloads (model archives, weak labels, job logs) are left out: a HEAD would build the whole stream to
throw it away, so they answer 405 as before."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STREAMED = re.compile(r"^/(models/[^/]+/download|jobs/[^/]+/(labels|log))/?$")


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD" or STREAMED.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
