"""The `config` form field of POST /jobs/ssa-train in /openapi.json: a JSON document typed by `TrainJobSpec`.

The field stays a string (service.submissions.config parses it, errors naming `config.<field>`); the schema says what
the string holds (OpenAPI 3.1: `contentMediaType` + `contentSchema`, and the multipart part's `contentType`), with
examples, and adds TrainJobSpec to the components."""

from __future__ import annotations

import json
from typing import Any

from jobs.spec import TrainJobSpec

SUBMIT_PATH = "/jobs/ssa-train"
FIELD = "config"
REF_TEMPLATE = "#/components/schemas/{model}"
EXAMPLES: list[dict[str, Any]] = [
    {},
    {"method": "hybrid", "iterations": 3, "deploy": "if_better"},
    {"method": "baseline", "iterations": 1, "model_id": "sentiment-baseline"},
    {"task": "regression", "metric": "spearman", "text_column": "sentence1", "text_pair_column": "sentence2"},
]


def spec_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainJobSpec's schema with examples, the schemas it refers to) for components.schemas."""
    schema = TrainJobSpec.model_json_schema(ref_template=REF_TEMPLATE)
    definitions = schema.pop("$defs", {})
    schema["examples"] = EXAMPLES
    return schema, definitions


def document_job_config(openapi: dict[str, Any]) -> None:
    """Type the `config` form field of the submit operation in `openapi` (in place)."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    schema, definitions = spec_schema()
    components.update(definitions)
    components[TrainJobSpec.__name__] = schema
    content = openapi["paths"][SUBMIT_PATH]["post"]["requestBody"]["content"]["multipart/form-data"]
    body = content["schema"]
    if "$ref" in body:
        body = components[body["$ref"].rsplit("/", 1)[-1]]
    field = body["properties"][FIELD]
    field.pop("anyOf", None)
    field.update({
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"$ref": REF_TEMPLATE.format(model=TrainJobSpec.__name__)},
        "description": "The job's settings: a JSON object typed by TrainJobSpec (every field optional; unknown "
                       "fields are refused with 422 naming them).",
        "examples": [json.dumps(example) for example in EXAMPLES],
    })
    content.setdefault("encoding", {})[FIELD] = {"contentType": "application/json"}
