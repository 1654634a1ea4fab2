"""The `config` form field of POST /jobs/ssa-train, parsed into the job's spec (`jobs.spec.TrainJobSpec`): every
field bounded, unknown fields refused, errors naming the field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from jobs.spec import TrainJobSpec
from service.errors import ApiError, field_path


def parse_config(text: str | None) -> TrainJobSpec:
    """The config form field as a TrainJobSpec; ApiError 422 naming the field otherwise."""
    try:
        raw: Any = json.loads(text) if text and text.strip() else {}
    except json.JSONDecodeError as exc:
        raise config_error("config", f"not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(raw, dict):
        raise config_error("config", "must be a JSON object")
    try:
        return TrainJobSpec.model_validate(raw)
    except ValidationError as exc:
        detail = [{"field": "config." + field_path(("body", *e["loc"])), "message": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in detail[:5])
        raise ApiError(422, "validation_error", message, detail) from None


def config_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}])
