"""Direct routes (POST /predict): FastAPI documents them from the declared endpoint (body model, dependencies,
responses) as usual, but a request runs a handler of its own that takes the Request and skips FastAPI's per-request
dependency solving and body handling. Under load that machinery cost about half of the event loop's time per /predict
request (py-spy, bench/results/api-profile.md); the handler does the same checks in a few calls.

`json_body` and `validated_body` read and validate a body as FastAPI does for a single body model, with the same
errors (RequestValidationError: `json_invalid` at its position, field errors located under "body"), so that the
error handlers answer exactly as they do for other routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from service.http.jsonbody import is_json_media

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Model = TypeVar("Model", bound=BaseModel)
MISSING: Any = object()  # an empty body (FastAPI: the body is required)


def direct_route(handler: Handler) -> type[APIRoute]:
    """An APIRoute class (for `route_class_override`) whose requests are answered by `handler`."""

    class DirectRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            return handler

    return DirectRoute


async def json_body(request: Request) -> Any:
    """The body as FastAPI hands it to validation: parsed JSON when the content type is JSON, the raw bytes when it
    is not (or is missing), MISSING when there is none. Invalid JSON raises RequestValidationError."""
    raw = await request.body()
    if not raw:
        return MISSING
    content_type = request.headers.get("content-type")
    if content_type is None or not is_json_media(content_type.encode("latin-1")):  # headers arrive as latin-1
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc


def validated_body(model: type[Model], value: Any) -> Model:
    """`value` (from json_body) validated as `model`; RequestValidationError with each error located under "body"."""
    if value is MISSING:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return model.model_validate(value, from_attributes=True)  # as FastAPI validates a body
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()],
                                     body=value) from exc
