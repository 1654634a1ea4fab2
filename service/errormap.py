"""The one error map: every domain error that reaches HTTP has one row here (status, error type, and the message,
detail and Retry-After taken from the exception's fields, never parsed from its text), and this module is the one
place where exceptions become responses, for the middleware stack's handlers and for the /predict fast path alike
(`response_for`). The shape of text-embeddings-inference's errors: one error type that carries its HTTP status
(`ApiError`), converted from the domain errors in one place."""

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
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from service.errors import ApiError, InvalidFields, PayloadTooLarge, error_response, field_path
from service.http.ratelimit import RateLimited
from service.inference.batcher import BatcherStopped, DeadlineExceeded, QueueFull
from service.inference.manager import ModelInUse, ModelLoadFailed
from service.inference.occlusion import OcclusionBusy
from service.submissions.label import UnknownModel
from service.submissions.train import QueueUnavailable, UploadRejected
from service.submissions.uploadcheck import UploadCheckUnavailable
from ssa_core.errors import ConfigError, InvalidId, NotFound
from ssa_core.runtime.modelmeta import UnknownVariant

log = logging.getLogger("ssa.service")


@dataclass(frozen=True)
class DomainError:
    """How one domain exception becomes a response: status, error type, its message and detail, and the seconds of
    its Retry-After header (all read from the exception's fields)."""

    status: int
    type: str
    message: Callable[[Any], str] = str
    detail: Callable[[Any], Any] = lambda exc: None
    retry_after: Callable[[Any], int | None] = lambda exc: None

    def api_error(self, exc: Exception) -> ApiError:
        seconds = self.retry_after(exc)
        return ApiError(self.status, self.type, self.message(exc), self.detail(exc),
                        None if seconds is None else {"Retry-After": str(seconds)})


def _field_detail(exc: InvalidId | ConfigError) -> list[dict[str, str]] | None:
    return None if exc.field is None else [{"field": exc.field, "message": str(exc)}]


def _fields(exc: InvalidFields) -> list[dict[str, str]]:
    return [{"field": field, "message": reason} for field, reason in exc.problems]


def _field(exc: ModelLoadFailed | ModelInUse) -> dict[str, str]:
    return {"field": exc.field}


def _retry_after(exc: QueueFull | OcclusionBusy | RateLimited | UploadCheckUnavailable | QueueUnavailable) -> int:
    return exc.retry_after_s


def _too_many_downloads(exc: RateLimited) -> str:
    return f"too many downloads: at most {exc.limit} a minute (SSA_DOWNLOADS_PER_MINUTE); retry later"


DOMAIN_ERRORS: dict[type[Exception], DomainError] = {
    # ssa_core and the job store
    NotFound: DomainError(404, "not_found"),
    InvalidId: DomainError(422, "invalid_id", detail=_field_detail),
    ConfigError: DomainError(422, "validation_error", detail=_field_detail),
    redis.RedisError: DomainError(503, "job_store_unavailable",
                                  message=lambda exc: "the job store (Redis) is unreachable; try again later",
                                  retry_after=lambda exc: 5),
    # a request's fields (service.errors)
    InvalidFields: DomainError(422, "validation_error", detail=_fields),
    # models: the variant a request names (the only field that names one), loading, removing, downloading
    UnknownVariant: DomainError(422, "validation_error", message=lambda exc: f"variant: {exc}",
                                detail=lambda exc: [{"field": "variant", "message": str(exc)}]),
    ModelLoadFailed: DomainError(422, "model_load_failed", detail=_field),
    ModelInUse: DomainError(409, "model_in_use", detail=_field),
    RateLimited: DomainError(429, "rate_limited", message=_too_many_downloads, retry_after=_retry_after),
    # the micro-batcher and the occlusion lane
    QueueFull: DomainError(429, "queue_full", retry_after=_retry_after),
    OcclusionBusy: DomainError(429, "occlusion_busy", retry_after=_retry_after),
    DeadlineExceeded: DomainError(504, "timeout", message=lambda exc: f"the prediction took too long: {exc}"),
    BatcherStopped: DomainError(503, "unavailable"),
    # job submissions
    UploadRejected: DomainError(422, "invalid_dataset", detail=lambda exc: exc.detail()),
    UnknownModel: DomainError(404, "not_found",
                              detail=lambda exc: [{"field": exc.field, "message": exc.reason}]),
    UploadCheckUnavailable: DomainError(503, "validation_unavailable", retry_after=_retry_after),
    QueueUnavailable: DomainError(503, "queue_unavailable", detail=lambda exc: {"job_id": exc.job_id},
                                  retry_after=_retry_after),
}


def to_api_error(exc: BaseException) -> ApiError | None:
    """`exc` as the one error type: itself when it is an ApiError, its row's error when it is a domain error (the
    row of its nearest class), else None."""
    if isinstance(exc, ApiError):
        return exc
    for kind in type(exc).__mro__:
        entry = DOMAIN_ERRORS.get(kind)
        if entry is not None:
            return entry.api_error(exc)  # type: ignore[arg-type]
    return None


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.type, exc.message, exc.detail, exc.headers)


def domain_error_response(exc: BaseException) -> JSONResponse | None:
    """The response for a domain exception (the table's entry for its nearest class), or None."""
    error = None if isinstance(exc, ApiError) else to_api_error(exc)
    return None if error is None else api_error_response(error)


def response_for(method: str, path: str, exc: BaseException) -> JSONResponse:
    """The response for any exception a request raised: an ApiError's own, a domain error's row, else a 500."""
    error = to_api_error(exc)
    return api_error_response(error) if error is not None else unexpected_error_response(method, path, exc)


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


def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    return response_for(request.method, request.url.path, exc)


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
