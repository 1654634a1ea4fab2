"""The error types of the service and the one JSON error shape of every failure: {"error": {"type", "message",
"detail"}}. `ApiError` is the one error type that carries its HTTP status; the service's domain errors
(`ServiceError`, and the errors of the batcher, the model manager, ssa_core ...) carry what they are about (field,
Retry-After) and know nothing of HTTP: service.errormap converts them, in one table, in one place."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


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


class ServiceError(Exception):
    """A domain error of the service itself (not of ssa_core or a library): `str()` is what a client is told."""


class InvalidFields(ServiceError):
    """Request fields that are invalid: (field, reason) pairs, in order; `str()` names the first five."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems[:5]))
        self.problems = problems


class InvalidField(InvalidFields):
    """One invalid request field (`inputs[3][1]`, `config.lr`, `variant`) and why: `str()` is "field: reason"."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__([(field, reason)])
        self.field, self.reason = field, reason


# Documented error responses, for the routes' `responses=`.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}
