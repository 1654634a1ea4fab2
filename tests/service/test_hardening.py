"""What a careful user or an attacker sees from outside: HEAD, security headers, JSON bodies that are not UTF-8 or
nest too deeply, the API docs without a CDN, private reads and the download limit, no server paths in /models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service.app import create_app
from service.http.jsonbody import MAX_DEPTH, depth
from service.http.ratelimit import RateLimited, RateLimiter, client_id
from ssa_core.runtime.artifacts import ArtifactStore
from tests.service.conftest import API_KEY, LiveServer, make_settings

KEY = {"X-API-Key": API_KEY.encode()}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/models", "/models/tiny-a", "/openapi.json", "/"])
def test_head_answers_like_get_without_a_body(shared_live: LiveServer, path: str) -> None:
    with shared_live.client() as client:
        get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_head_where_get_is_not_allowed_stays_405(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        assert client.head("/predict").status_code == 405
        assert client.head("/models/tiny-a/download").status_code == 405  # streamed: not built to be dropped


@pytest.mark.parametrize("path", ["/", "/healthz", "/models", "/static/js/app.js", "/nowhere"])
def test_every_response_has_the_security_headers(shared_live: LiveServer, path: str) -> None:
    with shared_live.client() as client:
        headers = client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp


def test_the_api_docs_load_everything_from_the_api_itself(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        for page in ("/docs", "/redoc"):
            response = client.get(page)
            assert response.status_code == 200, page
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
            assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
            for source in sources:
                asset = client.get(source)
                assert asset.status_code == 200 and len(asset.content) > 1000, source


def test_a_json_body_that_is_not_utf8_is_named_as_such(shared_live: LiveServer) -> None:
    body = json.dumps({"inputs": "a fine film"})
    with shared_live.client() as client:
        utf16 = client.post("/predict", content=body.encode("utf-16"), headers={"content-type": "application/json"})
        latin1 = client.post("/predict", content='{"inputs": "caf\u00e9"}'.encode("latin-1"),
                             headers={"content-type": "application/json"})
        fine = client.post("/predict", content=body.encode("utf-8"), headers={"content-type": "application/json"})
    assert utf16.status_code == latin1.status_code == 400
    for response in (utf16, latin1):
        error = response.json()["error"]
        assert error["type"] == "invalid_body" and "not UTF-8" in error["message"]
    assert latin1.json()["error"]["detail"]["position"] == len('{"inputs": "caf')
    assert fine.status_code == 200


def test_a_deeply_nested_json_body_is_named_as_such(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        deep = client.post("/predict", content=b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                           headers={"content-type": "application/json"})
        brackets_in_text = client.post("/predict", json={"inputs": "[" * 5000})
    assert deep.status_code == 400
    assert deep.json()["error"]["type"] == "invalid_json"
    assert f"more than {MAX_DEPTH} levels deep" in deep.json()["error"]["message"]
    assert brackets_in_text.status_code != 400  # brackets inside a string do not nest


def test_depth_skips_strings_and_escapes() -> None:
    assert depth(b'{"a": [1, {"b": "[[[\\"]]"}]}') == 3
    assert depth(b"[]") == 1 and depth(b'"{"') == 0


def test_models_show_base_model_names_never_server_paths(tmp_path: Path, model_store: ArtifactStore,
                                                        tiny_encoder_dir: Path) -> None:
    settings = make_settings(model_store.root, allowed_base_models=f"minilm,tiny={tiny_encoder_dir}")
    with LiveServer(create_app(settings)) as server, server.client() as client:
        server.wait_ready("tiny-a")
        listed, one = client.get("/models"), client.get("/models/tiny-a")
    assert {m["base_model"] for m in listed.json()["models"]} == {"tiny"}
    assert one.json()["base_model"] == "tiny" and "`tiny`" in one.json()["card"]
    for response in (listed, one):
        assert str(tiny_encoder_dir) not in response.text and str(model_store.root) not in response.text


def test_models_without_an_allow_list_entry_show_the_folder_name_only(shared_live: LiveServer,
                                                                      tiny_encoder_dir: Path) -> None:
    with shared_live.client() as client:
        listed = client.get("/models")
    assert {m["base_model"] for m in listed.json()["models"]} == {tiny_encoder_dir.name}
    assert str(tiny_encoder_dir) not in listed.text


def test_downloads_need_the_key_by_default_and_are_rate_limited_per_key(model_store: ArtifactStore) -> None:
    settings = make_settings(model_store.root, downloads_per_minute=2)
    with LiveServer(create_app(settings)) as server, server.client() as client:
        assert client.get("/models/tiny-a/download").status_code == 401
        codes = [client.get("/models/tiny-a/download", headers=KEY).status_code for _ in range(3)]
        limited = client.get("/models/tiny-b/download", headers=KEY)
        missing = client.get("/models/nope/download", headers=KEY)
        openapi = client.get("/openapi.json").json()
    assert codes == [200, 200, 429]
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert missing.status_code == 404  # the limit counts downloads, not mistakes
    download = openapi["paths"]["/models/{model_id}/download"]["get"]
    assert download["security"] == [{"ApiKey": []}] and "429" in download["responses"]
    assert "security" not in openapi["paths"]["/models"]["get"]


def test_private_reads_follow_the_setting(model_store: ArtifactStore) -> None:
    settings = make_settings(model_store.root, private_reads="")
    with LiveServer(create_app(settings)) as server, server.client() as client:
        assert client.get("/models/tiny-a/download").status_code == 200
        download = client.get("/openapi.json").json()["paths"]["/models/{model_id}/download"]["get"]
    assert "security" not in download
    assert make_settings(model_store.root).private_reads == ("labels", "downloads")
    with pytest.raises(ValueError, match="private_reads"):
        make_settings(model_store.root, private_reads="labels,secrets")


def test_rate_limiter_window_and_clients() -> None:
    now = [0.0]
    limiter = RateLimiter(2, window_s=60, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    limiter.take("b")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == 60
    now[0] = 60.5
    limiter.take("a")
    assert client_id("secret", "1.2.3.4").startswith("key:") and "secret" not in client_id("secret", None)
    assert client_id(None, "1.2.3.4") == "addr:1.2.3.4"
