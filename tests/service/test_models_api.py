"""Models, health, readiness, metrics and auth endpoints against a real uvicorn server."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from service.app import create_app
from ssa_core.runtime.artifacts import ArtifactStore
from tests.service.conftest import API_KEY, LiveServer, make_settings, publish_copy


def test_list_and_get_models(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        listing = client.get("/models").json()
        one = client.get("/models/tiny-b").json()
        missing = client.get("/models/nope")
        invalid = client.get("/models/a..b")
    assert listing["active"] == "tiny-a"
    assert {m["model_id"]: (m["active"], m["loaded"]) for m in listing["models"]} == {
        "tiny-a": (True, True), "tiny-b": (False, False)}
    assert one["labels"] == ["negative", "positive"] and one["method"] == "hybrid" and one["max_length"] == 64
    assert one["metrics"]["best_iteration"] == 0 and "accuracy" in one["metrics"]["dev"]
    assert "path" not in one
    assert one["card"].startswith("# Model card") and one["ssa"]["tau"] == 0.3 and one["ssa"]["lambda_tok"] == 0.1
    assert all(m["card"] is None for m in listing["models"])  # the card comes with GET /models/{id} only
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert invalid.status_code == 422 and invalid.json()["error"]["detail"][0]["field"] == "model_id"


def test_download_streams_the_model_folder(shared_live: LiveServer, shared_store: ArtifactStore) -> None:
    with shared_live.client() as client, client.stream("GET", "/models/tiny-b/download",
                                                      headers={"X-API-Key": API_KEY.encode()}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/gzip"
        assert 'filename="tiny-b.tar.gz"' in response.headers["content-disposition"]
        data = b"".join(response.iter_bytes())
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = set(tar.getnames())
        ssa = tar.extractfile("tiny-b/ssa.json").read()  # type: ignore[union-attr]
    assert {"tiny-b/model.onnx", "tiny-b/tokenizer.json", "tiny-b/metrics.json"} <= names
    assert ssa == (shared_store.model_dir("tiny-b") / "ssa.json").read_bytes()


def test_health_ready_and_metrics(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        client.post("/predict", json={"inputs": ["one", "two"]})
        metrics = client.get("/metrics")
    assert ready.status_code == 200 and ready.json()["model_id"] == "tiny-a"
    assert ready.json()["provider"] == "CPUExecutionProvider"
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("ssa_request_latency_seconds_bucket", "ssa_batch_size_bucket", "ssa_queue_depth",
                 "ssa_inference_seconds_bucket", "ssa_active_model_info"):
        assert name in text
    assert 'route="/predict"' in text and 'model_id="tiny-a"' in text


def test_deploy_needs_the_api_key(live: LiveServer) -> None:
    with live.client() as client:
        missing = client.post("/models/tiny-b/deploy")
        wrong = client.post("/models/tiny-b/deploy", headers={"X-API-Key": "nope"})
        unknown = client.post("/models/nope/deploy", headers={"X-API-Key": API_KEY.encode()})
        done = client.post("/models/tiny-b/deploy", headers={"X-API-Key": API_KEY.encode()})
        predicted = client.post("/predict", json={"inputs": "fine"}).json()
    assert missing.status_code == 401 and "missing" in missing.json()["error"]["message"]
    assert wrong.status_code == 401 and "wrong" in wrong.json()["error"]["message"]
    assert unknown.status_code == 404
    assert done.status_code == 200
    assert done.json()["model_id"] == "tiny-b" and done.json()["previous"] == "tiny-a"
    assert predicted["model_id"] == "tiny-b"


def test_active_model_survives_a_restart(live: LiveServer, model_store: ArtifactStore) -> None:
    with live.client() as client:
        assert client.post("/models/tiny-b/deploy", headers={"X-API-Key": API_KEY.encode()}).status_code == 200
    assert model_store.active_model_id() == "tiny-b"
    with LiveServer(create_app(make_settings(model_store.root))) as restarted:
        assert restarted.wait_ready()["model_id"] == "tiny-b"


def test_a_deploy_by_another_process_is_picked_up(live: LiveServer, model_store: ArtifactStore) -> None:
    ArtifactStore(model_store.root).set_active_model("tiny-b")  # as the worker's `deploy: if_better` does
    assert live.wait_ready("tiny-b", timeout=10)["model_id"] == "tiny-b"


def test_empty_store_starts_unready_then_serves_a_deployed_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = make_settings(tmp_path / "home")
    app = create_app(settings)
    with LiveServer(app) as server, server.client() as client:
        app.state.bootstrap_status = lambda: {"state": "submitted", "progress": 0.25}
        not_ready = client.get("/readyz")
        refused = client.post("/predict", json={"inputs": "x"})
        assert client.get("/models").json() == {"active": None, "models": []}
        publish_copy(app.state.store, tiny_model_dir, "first")
        deployed = client.post("/models/first/deploy", headers={"X-API-Key": API_KEY.encode()})
        ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["reason"] == "no model yet"
    assert not_ready.json()["bootstrap"] == {"state": "submitted", "progress": 0.25}
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "not_ready"
    assert deployed.status_code == 200 and ready.status_code == 200 and ready.json()["bootstrap"] is None


def test_a_broken_active_model_is_reported_not_fatal(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = ArtifactStore(tmp_path / "home")
    publish_copy(store, tiny_model_dir, "broken")
    (store.model_dir("broken") / "model.onnx").unlink()
    (store.model_dir("broken") / "model.onnx").write_bytes(b"not an onnx file")
    store.set_active_model("broken")
    with LiveServer(create_app(make_settings(store.root))) as server, server.client() as client:
        deadline = time.monotonic() + 10
        while "failed" not in (reason := client.get("/readyz").json()["reason"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        deploy = client.post("/models/broken/deploy", headers={"X-API-Key": API_KEY.encode()})
        assert client.get("/healthz").status_code == 200
    assert reason == "model broken failed to load: its ONNX file is not a valid ONNX model"
    assert deploy.status_code == 422 and deploy.json()["error"]["type"] == "model_load_failed"
    assert deploy.json()["error"]["message"] == reason  # our words, not ONNX Runtime's (which name the path)
    assert "Traceback" not in deploy.text and str(store.root) not in deploy.text and "INVALID" not in deploy.text


def test_unexpected_errors_are_500_json_without_internals(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(make_settings(tmp_path / "home"))

    @app.get("/explode", include_in_schema=False)
    async def explode() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    with LiveServer(app) as server, server.client() as client:
        response = client.get("/explode")
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "internal_error", "detail": None,
                                         "message": "internal server error; the cause has been logged"}}
    assert "secret" not in response.text
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)


def test_reads_can_require_the_key(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "home", reads_require_key=True))
    with LiveServer(app) as server, server.client() as client:
        refused = client.get("/models")
        allowed = client.get("/models", headers={"X-API-Key": API_KEY.encode()})
        health = client.get("/healthz")
        schema = client.get("/openapi.json").json()
        # /predict (answered without FastAPI's dependency solver) checks JSON first, then the key, then the fields
        predict_bad_json = client.post("/predict", content=b"{", headers={"content-type": "application/json"})
        predict_no_key = client.post("/predict", json={"inputs": 5})
        predict_bad_field = client.post("/predict", json={"inputs": "x", "truncate": "yes"},
                                        headers={"X-API-Key": API_KEY.encode()})
    assert refused.status_code == 401 and allowed.status_code == 200 and health.status_code == 200
    assert predict_bad_json.status_code == 400 and predict_bad_json.json()["error"]["type"] == "invalid_json"
    assert predict_no_key.status_code == 401 and predict_no_key.headers["www-authenticate"] == "X-API-Key"
    assert predict_bad_field.status_code == 422
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey"}
    assert schema["paths"]["/models"]["get"]["security"] == [{"ApiKey": []}]
    assert schema["paths"]["/predict"]["post"]["security"] == [{"ApiKey": []}]


def test_openapi_documents_auth_only_where_enforced(shared_live: LiveServer) -> None:
    with shared_live.client() as client:
        schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                      "description": "API key (SSA_API_KEY) for write endpoints."}
    assert schema["paths"]["/models/{model_id}/deploy"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in schema["paths"]["/models"]["get"]
    assert "security" not in schema["paths"]["/predict"]["post"]
    predict = schema["components"]["schemas"]["PredictRequest"]
    assert predict["properties"]["inputs"]["anyOf"][1]["maxItems"] == 64 and predict["examples"]


def test_writes_refused_without_a_configured_key(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "home", api_key=None))
    with LiveServer(app) as server, server.client() as client:
        response = client.post("/models/any/deploy", headers={"X-API-Key": "guess"})
    assert response.status_code == 401 and "none is configured" in response.json()["error"]["message"]


def test_cuda_provider_falls_back_to_cpu_with_a_log_line(model_store: ArtifactStore,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="ssa.runtime")
    with LiveServer(create_app(make_settings(model_store.root, provider="cuda"))) as server:
        ready = server.wait_ready("tiny-a")
    assert ready["provider"] == "CPUExecutionProvider"  # this machine has no GPU
    assert any("CUDA execution provider unavailable" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)
