"""The API's OpenAPI document against the snapshot taken before the jobs/ refactor (fixtures/openapi-before.json, made
from create_app with default settings; PredictRequest, SpanOut, PredictionOut and the /predict description were
retaken when the occlusion explainer added `explain`, `occlusion` and `explainer`; the labels, log and download
operations were retaken when labels and downloads became private reads and downloads got their 429; POST
/models/{model_id}/deploy and DeployResponse when the deploy gate added the optional body `{"force"}`, 409
`model_mismatch` and `forced`, and the deploy operation again when it documented its 400 `invalid_json`; ModelOut,
PredictRequest, PredictResponse and the /predict description when int8 variants added `variants`, `variant` and
`model_variant`; POST /jobs/ssa-train and POST /jobs/ssa-label when bounded uploads added their 429
`too_many_uploads` and again when they documented their 400 for a malformed multipart body; the new DELETE
/models/{model_id} and DELETE /jobs/{job_id} were added, GET /jobs (offset bounded: `maximum`) and GET
/jobs/{job_id}/labels (iteration bounded; its `format` query gained the review formats `label-studio` and `argilla`)
retaken, JobInfo and ModelOut retaken for their new `disk_bytes`; ModelOut, PredictRequest, PredictResponse and
the /predict description when fp16 variants joined int8; Body_submit_job_jobs_ssa_train_post when its `train` file's
description named the Label Studio export (.json); TrainJobSpec when recipes and distractor copies added `recipe`,
`distractor_share` and `distractor_sources` (scripts/retake_openapi.py retakes named entries)): every path,
method, parameter and status code is kept, and a schema may change only where a free-form object became a named,
typed one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.settings import Settings

SNAPSHOT = Path(__file__).parent / "fixtures" / "openapi-before.json"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = Settings(home=tmp_path_factory.mktemp("openapi-home"), bootstrap=False)
    now = json.loads(json.dumps(create_app(settings).openapi()))
    return json.loads(SNAPSHOT.read_text(encoding="utf-8")), now


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in document["paths"].items() for method, op in item.items()}


def parameters(operation: dict[str, Any]) -> set[tuple[str, str, bool]]:
    return {(p["name"], p["in"], bool(p.get("required"))) for p in operation.get("parameters", [])}


def free_form(schema: Any) -> bool:
    """An object schema with no named properties (a `dict[str, Any]`), or no schema at all."""
    if not isinstance(schema, dict):
        return False
    if "anyOf" in schema:
        return any(free_form(option) for option in schema["anyOf"])
    return schema.get("type") == "object" and "properties" not in schema and "$ref" not in schema


def compatible(before: Any, now: Any) -> bool:
    """`now` equals `before`, except where a free-form object of `before` became a named schema (a $ref)."""
    if before == now:
        return True
    if free_form(before) and "$ref" in json.dumps(now):
        return True
    if isinstance(before, dict) and isinstance(now, dict):
        return before.keys() == now.keys() and all(compatible(before[k], now[k]) for k in before)
    if isinstance(before, list) and isinstance(now, list):
        return len(before) == len(now) and all(compatible(b, n) for b, n in zip(before, now, strict=True))
    return False


def test_every_path_method_parameter_and_status_code_is_kept(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, now = documents
    old_ops, new_ops = operations(before), operations(now)
    assert set(new_ops) == set(old_ops)
    for key, old in old_ops.items():
        new = new_ops[key]
        assert parameters(new) == parameters(old), key
        assert set(new["responses"]) == set(old["responses"]), key
        assert new.get("security") == old.get("security"), key
        assert ("requestBody" in new) == ("requestBody" in old), key


def test_schemas_change_only_where_a_free_form_object_became_a_named_one(
        documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, now = documents
    old_schemas, new_schemas = before["components"]["schemas"], now["components"]["schemas"]
    assert set(old_schemas) <= set(new_schemas)
    for name, schema in old_schemas.items():
        assert compatible(schema, new_schemas[name]), name
    for key, old in operations(before).items():
        assert compatible(old, operations(now)[key]), key


def test_the_comparison_notices_a_lost_field() -> None:
    kept = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "object"}}}
    typed = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"$ref": "#/components/schemas/B"}}}
    lost = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert compatible(kept, typed) and not compatible(kept, lost) and not compatible(typed, kept)


def test_every_body_documents_the_400_for_a_body_that_does_not_parse(
        documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """A body that does not parse is answered 400 by every route that reads one: `invalid_json` (service/errors.py),
    or `bad_request` for a multipart body without a boundary or with broken parts."""
    _, now = documents
    bodies = {key: op for key, op in operations(now).items() if op.get("requestBody", {}).get("content")}
    assert {("/predict", "post"), ("/tokenize", "post"), ("/models/{model_id}/deploy", "post"),
            ("/jobs/ssa-train", "post"), ("/jobs/ssa-label", "post")} <= set(bodies)
    assert [key for key, op in bodies.items() if "400" not in op["responses"]] == []
