"""The TEI-style surface next to the existing one: GET /info, GET /health (alias of /healthz), POST /tokenize, and
the job config's typed schema in /openapi.json. Against a real server serving the tiny trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from jobs.spec import TrainJobSpec
from service.app import create_app
from service.openapi.document import with_input_kind
from service.settings import Settings
from tests.service.conftest import LiveServer, make_settings

TEXT = "A gorgeous, witty, seductive movie."


def test_info_names_the_served_model_limits_and_build(shared_live: LiveServer, tiny_model_dir: Path) -> None:
    with shared_live.client() as client:
        body = client.get("/info").json()
    meta = json.loads((tiny_model_dir / "ssa.json").read_text())
    assert body["model_id"] == "tiny-a" and body["model_version"] == meta["version"]
    assert (body["task"], body["method"], body["labels"]) == ("classification", "hybrid", ["negative", "positive"])
    assert body["max_input_length"] == meta["max_length"] == 64 and body["pair"] is False and body["ready"] is True
    assert body["provider"] == "CPUExecutionProvider"
    defaults = Settings()
    assert body["limits"]["max_client_batch_size"] == defaults.max_inputs
    assert body["limits"]["max_input_chars"] == defaults.max_chars
    assert body["build"]["version"] and body["build"]["onnxruntime"] and body["build"]["python"].startswith("3.")
    assert "/" not in json.dumps(body["build"])  # no paths


def test_info_answers_before_a_model_is_loaded(tmp_path: Path) -> None:
    with LiveServer(create_app(make_settings(tmp_path / "empty"))) as server, server.client() as client:
        response = client.get("/info")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is False and body["model_id"] is None and body["labels"] is None
    assert body["limits"]["max_batch_size"] == Settings().max_batch_size


def test_health_is_an_alias_of_healthz(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        assert client.get("/health").json() == client.get("/healthz").json() == {"status": "ok"}


def test_tokenize_gives_tokens_with_offsets(shared_live: LiveServer, tiny_model_dir: Path) -> None:
    with shared_live.client() as client:
        response = client.post("/tokenize", json={"inputs": [TEXT, "Dull."]})
    assert response.status_code == 200
    first, second = response.json()
    reference = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json")).encode(TEXT)
    assert [t["id"] for t in first] == reference.ids
    assert first[0]["special"] and first[0]["start"] is None and first[-1]["special"]
    for token in first[1:-1]:
        assert not token["special"] and token["segment"] == 0
        piece = TEXT[token["start"] : token["stop"]].lower()
        assert piece == token["text"].removeprefix("##")
    assert [t["text"] for t in second] == ["[CLS]", "dull", ".", "[SEP]"]


def test_tokenize_without_special_tokens(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        (tokens,) = client.post("/tokenize", json={"inputs": "Dull.", "add_special_tokens": False}).json()
    assert [(t["text"], t["start"], t["stop"]) for t in tokens] == [("dull", 0, 4), (".", 4, 5)]


@pytest.mark.parametrize(("body", "field"), [
    ({"inputs": ""}, "inputs"),
    ({"inputs": ["fine", "   "]}, "inputs[1]"),
    ({"inputs": [["a", "b"]]}, "inputs[0]"),  # pairs, for a single-text model
    ({"inputs": "x" * 10_001}, "inputs"),
])
def test_tokenize_refuses_bad_inputs_naming_the_field(shared_live: LiveServer, body: dict[str, Any],
                                                      field: str) -> None:
    with shared_live.client() as client:
        response = client.post("/tokenize", json=body)
    assert response.status_code == 422
    fields = [d.get("field") for d in response.json()["error"]["detail"] or []]
    assert any(f is not None and f.endswith(field) for f in fields), response.json()


def test_tokenize_without_a_model_is_503(tmp_path: Path) -> None:
    with LiveServer(create_app(make_settings(tmp_path / "empty"))) as server, server.client() as client:
        response = client.post("/tokenize", json={"inputs": TEXT})
    assert response.status_code == 503 and response.json()["error"]["type"] == "not_ready"


def test_openapi_types_the_job_config_form_field(tmp_path: Path) -> None:
    document = create_app(Settings(home=tmp_path, bootstrap=False)).openapi()
    schemas = document["components"]["schemas"]
    spec = schemas["TrainJobSpec"]
    assert set(spec["properties"]) == set(TrainJobSpec.model_fields)
    assert spec["additionalProperties"] is False and len(spec["examples"]) >= 2
    for example in spec["examples"]:
        TrainJobSpec.model_validate(example)  # every example is a valid config
    content = document["paths"]["/jobs/ssa-train"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert content["encoding"]["config"] == {"contentType": "application/json"}
    field = schemas[content["schema"]["$ref"].rsplit("/", 1)[-1]]["properties"]["config"]
    assert field["contentMediaType"] == "application/json"
    assert field["contentSchema"] == {"$ref": "#/components/schemas/TrainJobSpec"}
    assert [TrainJobSpec.model_validate(json.loads(e)) for e in field["examples"]]
    for path in ("/info", "/health", "/tokenize"):
        assert path in document["paths"]


def test_the_document_narrows_inputs_to_the_served_models_kind(shared_live: LiveServer, tmp_path: Path) -> None:
    """Served a single-text model, /openapi.json advertises texts only; before any model is served, either kind."""
    with shared_live.client() as client:
        served = client.get("/openapi.json").json()["components"]["schemas"]
    for body in ("PredictRequest", "TokenizeRequest"):
        inputs = served[body]["properties"]["inputs"]
        assert "pair" not in json.dumps(inputs["anyOf"]) and inputs["anyOf"][1]["items"]["type"] == "string"
        assert "the served model takes single texts" in inputs["description"]
    idle = create_app(make_settings(tmp_path / "empty")).openapi()["components"]["schemas"]["PredictRequest"]
    assert idle["properties"]["inputs"]["anyOf"][1]["items"]["anyOf"][1]["minItems"] == 2  # texts or pairs
    pairs = with_input_kind(create_app(make_settings(tmp_path / "e2")).openapi(), True, 4, 10)
    narrowed = pairs["components"]["schemas"]["PredictRequest"]["properties"]["inputs"]
    assert narrowed["items"] == {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 10,
                                                            "pattern": "\\S"}, "minItems": 2, "maxItems": 2}
