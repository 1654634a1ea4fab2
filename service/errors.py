"""One error type and one JSON error shape for every failure: {"error": {"type", "message", "detail"}}.

All mapping from exceptions to responses happens here: domain errors through one table (`DOMAIN_ERRORS`) that reads
the fields they carry, never their messages; handlers never leak internals (tracebacks are logged)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from ssa_core.errors import ConfigError, InvalidId, NotFound

log = logging.getLogger("ssa.service")


class ApiError(Exception):
    """An error response: HTTP status, a stable machine-readable type, a human message and optional detail."""

    def __init__(self, status: int, type: str, message: str, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.detail, self.headers = status, type, message, detail, headers


class PayloadTooLarge(StarletteHTTPException):
    """Raised while the body is being received once it exceeds the limit (see service.http.bodylimit)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")
        self.limit = limit


class ErrorInfo(BaseModel):
    type: str = Field(examples=["validation_error"])
    message: str = Field(examples=["inputs[0]: text is empty or only whitespace"])
    detail: Any = Field(None, examples=[[{"field": "inputs[0]", "message": "text is empty or only whitespace"}]])


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


def error_response(status: int, type: str, message: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"type": type, "message": message, "detail": detail}}
    return JSONResponse(body, status_code=status, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'inputs', 2, 1) -> 'inputs[2][1]'; path and query parameters keep their name."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "path", "query", "header") else loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def invalid_field(field: str, message: str) -> ApiError:
    """A 422 naming one field."""
    return ApiError(422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}])


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        position = first["loc"][-1] if first.get("loc") else None
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        return error_response(400, "invalid_json", f"the request body is not valid JSON: {reason}",
                              {"field": "body", "position": position})
    detail = [{"field": field_path(e.get("loc", ())), "message": _message(e), "type": e.get("type")}
              for e in errors]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in detail[:5])
    return error_response(422, "validation_error", message, detail)


def _message(error: Any) -> str:
    """Pydantic's message, in our words where FastAPI's own would name its internals."""
    message = str(error.get("msg"))
    if "Expected UploadFile" in message:
        return "must be a file (a multipart part with a file name), not a text field"
    return message


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.type, exc.message, exc.detail, exc.headers)


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if isinstance(exc, PayloadTooLarge):
        return error_response(413, "payload_too_large", str(exc.detail), {"field": "body", "limit": exc.limit},
                              {"Connection": "close"})
    if status == 400 and exc.detail == "There was an error parsing the body":
        # what service.http.jsonbody does not catch ahead (encoding and nesting are named there)
        return error_response(400, "invalid_body", "the request body could not be parsed", {"field": "body"})
    type_name = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    headers = dict(exc.headers) if exc.headers else None
    if status == 405:  # Starlette names only the first route of the path; a path may have several (GET, DELETE)
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(status, type_name, message, None, headers)


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes themselves, through the wrappers of included routers (FastAPI keeps the router it included)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from leaf_routes(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method of the path operations the request's path belongs to: the routes whose path matches it with the
    fewest parameters (/jobs/ssa-label is that operation's path, not a job id of /jobs/{job_id})."""
    matching: dict[int, set[str]] = {}
    for route in leaf_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            parameters = str(getattr(route, "path", "")).count("{")
            matching.setdefault(parameters, set()).update(getattr(route, "methods", None) or ())
    return sorted(matching[min(matching)]) if matching else []


@dataclass(frozen=True)
class DomainError:
    """How one domain exception becomes a response: status, error type, and its message and detail (from the
    exception's fields)."""

    status: int
    type: str
    message: Callable[[Any], str] = str
    detail: Callable[[Any], Any] = lambda exc: None
    headers: dict[str, str] | None = None


def _field_detail(exc: InvalidId | ConfigError) -> list[dict[str, str]] | None:
    return None if exc.field is None else [{"field": exc.field, "message": str(exc)}]


DOMAIN_ERRORS: dict[type[Exception], DomainError] = {
    NotFound: DomainError(404, "not_found"),
    InvalidId: DomainError(422, "invalid_id", detail=_field_detail),
    ConfigError: DomainError(422, "validation_error", detail=_field_detail),
    redis.RedisError: DomainError(503, "job_store_unavailable",
                                  message=lambda exc: "the job store (Redis) is unreachable; try again later",
                                  headers={"Retry-After": "5"}),
}


def domain_error_response(exc: Exception) -> JSONResponse | None:
    """The response for a domain exception (the table's entry for its nearest class), or None."""
    for kind in type(exc).__mro__:
        entry = DOMAIN_ERRORS.get(kind)
        if entry is not None:
            return error_response(entry.status, entry.type, entry.message(exc), entry.detail(exc), entry.headers)
    return None


def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    response = domain_error_response(exc)
    return response if response is not None else _unexpected(request, exc)


def unexpected_error_response(method: str, path: str, exc: BaseException) -> JSONResponse:
    """The 500 for an exception nothing else handled; its cause goes to the log, never to the client."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error; the cause has been logged")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_error_response(request.method, request.url.path, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, _domain_error)
    app.add_exception_handler(Exception, _unexpected)


# Documented error responses, for the routes' `responses=`.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}
