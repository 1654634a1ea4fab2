"""The /predict fast path: ordinary prediction requests are answered ahead of the ASGI middleware stack.

On its way to a route every request passes about a dozen layers: Starlette's and FastAPI's error, telemetry,
body-limit, exception and routing middleware, and this service's five (latency metric, security headers, HEAD as
GET, body cap, JSON checks), each a coroutine call and most a wrapper around `send`. On 2 cores under load they took
about a quarter of the event loop's time per /predict request (py-spy), and the event loop shares the cores with the
model.

`FastPath` wraps the whole stack (service.app.ServiceApp). A POST /predict request that the stack would hand to the
route untouched and whose body validates (a JSON content type, at most SSA_MAX_BODY_BYTES, UTF-8, nested at most
MAX_DEPTH deep, the read key where reads need one, fields that validate) is answered here: by the route's own `answer`
(service.inference.predict), with the headers and the latency observation the middleware gives every response. Any other
request goes through the stack with its body replayed, so every error that a request can get before its prediction is
queued is the stack's own answer; errors after that (queue full, timeout, input too long) are answered as the stack's
error handlers answer them."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import API_KEY_HEADER, check_read_key
from service.errormap import response_for
from service.errors import ApiError
from service.http.bodylimit import content_length
from service.http.directroute import validated_body
from service.http.jsonbody import MAX_DEPTH, is_json_media, replay
from service.http.securityheaders import COMMON, policy_for
from service.inference.predict import answer
from service.inference.request import predict_request_model
from service.settings import Settings
from service.wiring import AppState, app_state

PATH = "/predict"
# the latency metric's route label (service.http.latency.route_name gives the stack's requests the same)
ROUTE_LABEL = PATH
KEY_HEADER = API_KEY_HEADER.lower().encode("latin-1")
# what service.http.securityheaders adds to a /predict response (none of these is set by the route)
SECURITY_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in
                    (*COMMON.items(), ("Content-Security-Policy", policy_for(PATH)))]


class FastPath:
    """The fast path, an ASGI app in front of `stack` (the app's middleware stack): POST /predict here when it is
    ordinary."""

    def __init__(self, app: FastAPI, stack: ASGIApp) -> None:
        self.app, self.stack = app, stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH or scope.get("root_path"):
            await self.stack(scope, receive, send)
            return
        state = app_state(self.app)
        if not state.settings.predict_fast_path:
            await self.stack(scope, receive, send)
            return
        await self._predict(state, scope, receive, send)

    async def _predict(self, state: AppState, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        content_type, key = request_headers(scope)
        limit, length = state.settings.max_body_bytes, content_length(scope)
        if content_type is None or not is_json_media(content_type) or (length is not None and length > limit):
            await self.stack(scope, receive, send)
            return
        messages, body = await read_body(receive, limit)
        request = None if body is None else ordinary_request(state.settings, body, key)
        if request is None:
            await self.stack(scope, replay(messages, receive), send)
            return
        try:
            response: Response = Response(await answer(request, state), media_type="application/json")
        except Exception as exc:  # as the stack's handlers answer it (a 500 in the error shape, the cause logged)
            response = response_for("POST", PATH, exc)
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [*response.raw_headers, *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": response.body})
        state.metrics.request_latency.labels(ROUTE_LABEL, "POST", str(response.status_code)).observe(
            time.perf_counter() - start)


def request_headers(scope: Scope) -> tuple[bytes | None, str | None]:
    """The Content-Type and the API key of a request (the first of each, as Starlette's Headers.get gives them)."""
    content_type = key = None
    for name, value in scope["headers"]:
        if name == b"content-type" and content_type is None:
            content_type = value
        elif name == KEY_HEADER and key is None:
            key = value.decode("latin-1")
    return content_type, key


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages received, and the body: None when it outgrew `limit` or the client went away first."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def ordinary_request(settings: Settings, body: bytes, key: str | None) -> Any | None:
    """The validated PredictRequest, or None where the stack would answer with an error (or might: a body nested
    deeper than service.http.jsonbody counts cheaply, JSON that orjson reads differently from Python's json)."""
    if not body or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        return None
    try:
        value = orjson.loads(body)  # strict: invalid UTF-8, NaN, lone surrogates and huge integers fail here
        check_read_key(settings, key)
        return validated_body(predict_request_model(settings.max_inputs, settings.max_chars), value)
    except (orjson.JSONDecodeError, ApiError, RequestValidationError):
        return None
