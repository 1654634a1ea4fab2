"""service.http.directroute answers a body exactly as FastAPI's own request handling does: the same route is mounted
twice, once as FastAPI runs it and once through a direct handler, and every body is sent to both."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from service.errormap import install_error_handlers
from service.http.directroute import direct_route, json_body, validated_body


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    inputs: str | list[str]
    truncate: bool = True


def twin_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/fastapi")
    async def plain(body: Body) -> Response:
        return Response(body.model_dump_json(), media_type="application/json")

    async def handle(request: Request) -> Response:
        return await plain(validated_body(Body, await json_body(request)))

    router = APIRouter()
    router.add_api_route("/direct", plain, methods=["POST"], route_class_override=direct_route(handle))
    app.include_router(router)
    return app


JSON = {"content-type": "application/json"}
CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("valid", b'{"inputs": "fine", "truncate": false}', JSON),
    ("a list of texts", b'{"inputs": ["a", "b"]}', JSON),
    ("vendor JSON type", b'{"inputs": "fine"}', {"content-type": "application/vnd.api+json; charset=utf-8"}),
    ("empty body", b"", JSON),
    ("invalid JSON", b'{"inputs": ', JSON),
    ("trailing garbage", b'{"inputs": "x"} x', JSON),
    ("not an object", b'["a"]', JSON),
    ("missing field", b'{"truncate": true}', JSON),
    ("extra field", b'{"inputs": "x", "nope": 1}', JSON),
    ("wrong type (strict)", b'{"inputs": "x", "truncate": "yes"}', JSON),
    ("nested wrong type", b'{"inputs": ["a", 3]}', JSON),
    ("plain-text content type", b'{"inputs": "x"}', {"content-type": "text/plain"}),
    ("no content type", b'{"inputs": "x"}', {}),
]


@pytest.mark.parametrize(("case", "body", "headers"), CASES, ids=[c[0] for c in CASES])
def test_a_direct_route_answers_every_body_as_fastapi_does(case: str, body: bytes, headers: dict[str, str]) -> None:
    with TestClient(twin_app()) as client:
        answers: list[Any] = []
        for path in ("/fastapi", "/direct"):
            response = client.post(path, content=body, headers=headers)
            answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == (200 if case in ("valid", "a list of texts", "vendor JSON type") else
                             400 if case in ("invalid JSON", "trailing garbage") else 422)


def test_a_direct_route_is_documented_from_its_declared_endpoint() -> None:
    schema = twin_app().openapi()
    assert schema["paths"]["/direct"]["post"]["requestBody"] == schema["paths"]["/fastapi"]["post"]["requestBody"]
