"""ASGI middleware that checks a JSON request body before FastAPI parses it, so that what is wrong is said exactly:
a body that is not UTF-8 (RFC 8259; Python's json would silently accept UTF-16 and UTF-32) and one nested deeper
than MAX_DEPTH (Python's parser would fail with a RecursionError, reported as a generic parse error)."""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response

MAX_DEPTH = 64  # arrays and objects inside each other; the API's own bodies need 4
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def is_json_media(content_type: bytes) -> bool:
    """Whether a Content-Type header names JSON: application/json or application/*+json (parameters ignored)."""
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def is_json(scope: Scope) -> bool:
    """FastAPI parses a body as JSON when its content type is JSON (application/json, application/*+json) or
    missing."""
    header = next((value for name, value in scope.get("headers", []) if name == b"content-type"), None)
    return header is None or is_json_media(header)


def depth(body: bytes) -> int:
    """How deeply arrays and objects nest in `body` (brackets inside strings do not count)."""
    deepest = level = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b"", body)):
        level += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, level)
    return deepest


def problem(body: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(error type, message, detail) of a body FastAPI should not see, or None."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ("invalid_body", f"the request body is not UTF-8 (byte {exc.start} is not valid UTF-8); JSON bodies "
                "must be encoded as UTF-8", {"field": "body", "position": exc.start})
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and depth(body) > MAX_DEPTH:
        return ("invalid_json", f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep",
                {"field": "body", "limit": MAX_DEPTH})
    return None


class JsonBodyCheck:
    """400 for a JSON body that is not UTF-8 or is nested too deeply; any other request passes untouched (the body
    is read here, already capped by service.http.bodylimit.BodySizeLimit, and handed on as it came)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH") or not is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        found = problem(b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request"))
        if found is not None:
            await error_response(400, *found)(scope, receive, send)
            return

        await self.app(scope, replay(messages, receive), send)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` with `messages` (already received) given again first."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
