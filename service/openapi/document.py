"""The OpenAPI document /openapi.json serves: generated once from the routes (with the job config typed and the key
schemes as the settings make them), then narrowed per request to the input kind of the model being served."""

from __future__ import annotations

import copy
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.auth import READ_SCHEME, WRITE_SCHEME, private_scheme
from service.inference.request import inputs_schema
from service.openapi.jobconfig import document_job_config
from service.settings import PrivateRead
from service.wiring import app_state


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    """The document /openapi.json serves: the generated one (see `generated_openapi`), with the request bodies that
    carry `inputs` narrowed to what the served model takes (single texts or pairs) once a model is served."""
    schema = generated_openapi(app)
    state = app_state(app)
    loaded = state.manager.current
    if loaded is None:
        return schema
    return with_input_kind(schema, loaded.predictor.pair, state.settings.max_inputs, state.settings.max_chars)


INPUT_BODIES = ("PredictRequest", "TokenizeRequest")


def with_input_kind(schema: dict[str, Any], pairs: bool, max_inputs: int, max_chars: int) -> dict[str, Any]:
    """A copy of `schema` whose `inputs` fields accept only single texts (`pairs` False) or only pairs."""
    narrowed = copy.deepcopy(schema)
    bodies = narrowed.get("components", {}).get("schemas", {})
    for name in INPUT_BODIES:
        if name in bodies:
            bodies[name]["properties"]["inputs"] = inputs_schema(max_inputs, max_chars, pairs)
    return narrowed


def generated_openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema (made once), with the read-key scheme merged into the write one (or dropped when reads
    are open)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                         tags=app.openapi_tags)
    document_job_config(schema)
    settings = app_state(app).settings
    keyed = {READ_SCHEME: settings.reads_require_key}
    keyed |= {private_scheme(kind): settings.reads_require_key or kind in settings.private_reads
              for kind in get_args(PrivateRead)}
    schemes = schema.get("components", {}).get("securitySchemes", {})
    for name in keyed:
        schemes.pop(name, None)
    for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
        given = operation.get("security", [])
        requirements = [r for r in given if not keyed.keys() & r.keys()]
        if any(keyed[name] for r in given for name in r if name in keyed):
            requirements.append({WRITE_SCHEME: []})
        if requirements:
            operation["security"] = requirements
        else:
            operation.pop("security", None)
    app.openapi_schema = schema
    return schema
