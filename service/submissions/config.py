"""The `config` form field of the job submissions, parsed into the job's spec (POST /jobs/ssa-train:
`jobs.spec.TrainJobSpec`; POST /jobs/ssa-label: `jobs.labelspec.LabelJobSpec`): every field bounded, unknown fields
refused, errors naming the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from jobs.labelspec import LabelJobSpec
from jobs.spec import TrainJobSpec
from service.errors import InvalidField, InvalidFields, field_path

Spec = TypeVar("Spec", bound=BaseModel)


def parse_config(text: str | None) -> TrainJobSpec:
    """The config form field as a TrainJobSpec; InvalidFields (422, naming the field) otherwise."""
    return parse_form_config(text, TrainJobSpec)


def parse_label_config(text: str | None) -> LabelJobSpec:
    """The config form field as a LabelJobSpec; InvalidFields (422, naming the field) otherwise."""
    return parse_form_config(text, LabelJobSpec)


def parse_form_config(text: str | None, spec: type[Spec]) -> Spec:
    """A JSON object form field (empty: {}) validated as `spec`; InvalidFields (422, naming the field) otherwise."""
    try:
        raw: Any = json.loads(text) if text and text.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidField("config", f"not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(raw, dict):
        raise InvalidField("config", "must be a JSON object")
    try:
        return spec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidFields([("config." + field_path(("body", *e["loc"])), e["msg"]) for e in exc.errors()]) from None
