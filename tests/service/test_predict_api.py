"""POST /predict against a real uvicorn server: results, spans, truncation, limits and the error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ssa_core.runtime.predictor import Predictor
from tests.service.conftest import LiveServer

TEXT = "A gorgeous, witty, seductive movie."


def post(live: LiveServer, body: Any = None, **kwargs: Any) -> Any:
    with live.client() as client:
        return client.post("/predict", json=body, **kwargs) if body is not None else client.post("/predict", **kwargs)


def assert_error(response: Any, status: int, type_: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == type_ and error["message"]
    assert "Traceback" not in response.text
    if field is not None:
        detail = error["detail"]
        fields = [d["field"] for d in detail] if isinstance(detail, list) else [detail["field"]]
        assert field in fields, error
    return dict(error)


def test_single_text_matches_the_runtime(shared_live: LiveServer, shared_store: Any) -> None:
    response = post(shared_live, {"inputs": TEXT})
    assert response.status_code == 200
    body = response.json()
    direct = Predictor.load(shared_store.model_dir("tiny-a")).predict([TEXT])[0]
    assert body["model_id"] == "tiny-a" and body["model_version"] == shared_store.get_model("tiny-a").version
    [prediction] = body["predictions"]
    assert prediction["label"] == direct.label
    assert prediction["score"] == pytest.approx(direct.score, abs=1e-5)
    assert set(prediction["scores"]) == {"negative", "positive"}
    assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction["truncated"] is False
    words = prediction["words"]
    assert [w["text"] for w in words] == ["A", "gorgeous", ",", "witty", ",", "seductive", "movie", "."]
    for span in words + prediction["tokens"]:
        assert TEXT[span["start"] : span["end"]] == span["text"] and span["segment"] == 0
        assert 0.0 <= span["attention"] <= 1.0 and 0.0 <= span["importance"] <= 1.0
    assert sum(t["attention"] for t in prediction["tokens"]) == pytest.approx(1.0, abs=1e-3)


def test_list_keeps_order_and_honours_flags(shared_live: LiveServer) -> None:
    texts = ["Dull.", TEXT, "The plot is thin but the acting is superb and the music is lovely."]
    alone = [post(shared_live, {"inputs": t}).json()["predictions"][0] for t in texts]
    body = post(shared_live, {"inputs": texts, "return_tokens": False}).json()
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in alone]
    assert [p["score"] for p in body["predictions"]] == pytest.approx([p["score"] for p in alone], abs=1e-5)
    assert all(p["tokens"] is None and p["words"] for p in body["predictions"])
    bare = post(shared_live, {"inputs": texts, "return_tokens": False, "return_words": False}).json()
    assert all(p["tokens"] is None and p["words"] is None for p in bare["predictions"])


def test_truncation_is_reported_or_refused_by_index(shared_live: LiveServer) -> None:
    long_text = "word " * 200
    body = post(shared_live, {"inputs": ["short", long_text]}).json()
    assert [p["truncated"] for p in body["predictions"]] == [False, True]
    assert body["predictions"][1]["words"][-1]["end"] < len(long_text)
    refused = post(shared_live, {"inputs": ["short", long_text], "truncate": False})
    error = assert_error(refused, 422, "validation_error", "inputs[1]")
    assert "202 tokens" in error["message"] and "64" in error["message"]
    assert_error(post(shared_live, {"inputs": long_text, "truncate": False}), 422, "validation_error", "inputs")


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ({"inputs": ["ok", "   \n\t"]}, "inputs[1]", "whitespace"),
    ({"inputs": ""}, "inputs", "whitespace"),
    ({"inputs": 5}, "inputs", "got integer"),
    ({"inputs": None}, "inputs", "got null"),
    ({"inputs": []}, "inputs", "empty"),
    ({"inputs": ["ok", {"text": "x"}]}, "inputs[1]", "got object"),
    ({"inputs": ["ok", ["a"]]}, "inputs[1]", "exactly 2"),
    ({"inputs": [["a", 3]]}, "inputs[0][1]", "got integer"),
    ({"inputs": [["a", "b"]]}, "inputs[0]", "single texts"),
    ({"inputs": "x" * 10_001}, "inputs", "limit is 10000"),
    ({"inputs": ["x"] * 65}, "inputs", "limit is 64"),
    ({"inputs": "x", "truncate": "yes"}, "truncate", "boolean"),
    ({"inputs": "x", "return_words": 1}, "return_words", "boolean"),
    ({"inputs": "x", "colour": "red"}, "colour", "not permitted"),
    ({"text": "x"}, "inputs", "required"),
    ({"inputs": "x", "model": "../../etc"}, "model", "pattern"),
])
def test_bad_input_names_the_field(shared_live: LiveServer, body: dict[str, Any], field: str, fragment: str) -> None:
    error = assert_error(post(shared_live, body), 422, "validation_error", field)
    assert fragment in error["message"]


def test_undecodable_bodies_are_400(shared_live: LiveServer) -> None:
    headers = {"content-type": "application/json"}
    error = assert_error(post(shared_live, content=b'{"inputs": "x",', headers=headers), 400, "invalid_json", "body")
    assert error["detail"]["position"] == 15
    assert_error(post(shared_live, content=b'{"inputs": "\xff\xfe"}', headers=headers), 400, "invalid_body", "body")
    assert_error(post(shared_live, content=b"[1, 2]", headers=headers), 422, "validation_error", "body")
    lone = post(shared_live, content=b'{"inputs": ["ok", "\\ud800 lone surrogate"]}', headers=headers)
    assert "surrogate" in assert_error(lone, 422, "validation_error", "inputs[1]")["message"]


def test_body_limit_applies_with_and_without_content_length(shared_live: LiveServer) -> None:
    big = json.dumps({"inputs": ["x" * 9000] * 120}).encode()  # > 1 MiB, < the other limits' concern
    assert len(big) > 1 << 20
    assert_error(post(shared_live, content=big, headers={"content-type": "application/json"}), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    response = post(shared_live, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    error = assert_error(response, 413, "payload_too_large", "body")
    assert error["detail"]["limit"] == 1 << 20


def test_model_field_selects_any_stored_model(shared_live: LiveServer) -> None:
    deployed = post(shared_live, {"inputs": "x", "model": "tiny-a"})
    other = post(shared_live, {"inputs": "x", "model": "tiny-b"})  # not deployed: loaded for this request
    assert deployed.status_code == 200 and deployed.json()["model_id"] == "tiny-a"
    assert other.status_code == 200 and other.json()["model_id"] == "tiny-b"
    assert post(shared_live, {"inputs": "x"}).json()["model_id"] == "tiny-a"  # the deployed model is unchanged
    assert_error(post(shared_live, {"inputs": "x", "model": "nope"}), 404, "not_found", "model")


def test_unknown_routes_and_methods_use_the_error_shape(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        assert_error(client.get("/nothing-here"), 404, "not_found")
        assert_error(client.delete("/predict"), 405, "method_not_allowed")
