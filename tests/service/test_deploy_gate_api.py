"""Manual deploy through the deploy gate (POST /models/{id}/deploy): another task / label set needs "force", a model
that cannot serve never reaches active.json, and after a deploy the job-free sources of truth agree: active.json,
GET /models, /readyz and /predict, also across a SIGKILLed and restarted `ssa serve` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from jobs.deploy import gate_and_deploy
from ssa_core.runtime.artifacts import ArtifactStore
from tests.jobs.test_deploy_gate import publish_variant
from tests.service.conftest import API_KEY, LiveServer
from tests.service.test_serve_process import free_port, wait_ready

KEY = {"X-API-Key": API_KEY.encode()}


def agreement(client: httpx.Client, store: ArtifactStore) -> dict[str, Any]:
    """What each source says is being served; they must all name the same model."""
    models = client.get("/models").json()
    ready = client.get("/readyz").json()
    predicted = client.post("/predict", json={"inputs": "a fine film"}).json()
    loaded = [m["model_id"] for m in models["models"] if m["loaded"]]
    sources = {"active.json": store.active_model_id(), "GET /models active": models["active"],
               "GET /models loaded": loaded[0] if len(loaded) == 1 else loaded, "readyz": ready["model_id"],
               "predict": predicted["model_id"]}
    assert len(set(map(str, sources.values()))) == 1, sources
    return sources


def test_another_label_set_needs_force(live: LiveServer, model_store: ArtifactStore, tiny_model_dir: Path) -> None:
    publish_variant(model_store, tiny_model_dir, "spam", labels=["ham", "spam"])
    with live.client() as client:
        refused = client.post("/models/spam/deploy", headers=KEY)
        assert agreement(client, model_store)["readyz"] == "tiny-a"
        not_forced = client.post("/models/spam/deploy", headers=KEY, json={"force": False})
        unknown_field = client.post("/models/spam/deploy", headers=KEY, json={"forse": True})
        assert model_store.active_model_id() == "tiny-a"
        forced = client.post("/models/spam/deploy", headers=KEY, json={"force": True})
        assert agreement(client, model_store)["readyz"] == "spam"
        same_labels = client.post("/models/tiny-b/deploy", headers=KEY)  # tiny-b vs spam: a mismatch again
        back = client.post("/models/tiny-b/deploy", headers=KEY, json={"force": True})
        agreed = agreement(client, model_store)
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "model_mismatch"
    assert refused.json()["error"]["message"] == (
        "model 'spam' does not fit the active model: its labels ['ham', 'spam'] differ from the active model "
        "'tiny-a''s ['negative', 'positive']; send {\"force\": true} to deploy it anyway")
    assert refused.json()["error"]["detail"] == {"field": "force"}
    assert not_forced.status_code == 409 and unknown_field.status_code == 422
    assert forced.status_code == 200 and forced.json()["forced"] is True and forced.json()["previous"] == "tiny-a"
    assert same_labels.status_code == 409 and back.status_code == 200 and agreed["readyz"] == "tiny-b"


def test_a_model_of_the_same_labels_deploys_without_force(live: LiveServer, model_store: ArtifactStore) -> None:
    with live.client() as client:
        done = client.post("/models/tiny-b/deploy", headers=KEY, json={})
        agreed = agreement(client, model_store)
    assert done.status_code == 200 and done.json()["forced"] is False and agreed["readyz"] == "tiny-b"


def test_a_model_that_cannot_serve_never_reaches_active_json(live: LiveServer, model_store: ArtifactStore,
                                                             tiny_model_dir: Path) -> None:
    publish_variant(model_store, tiny_model_dir, "too-long", max_length=600)  # 512 positions: predicting fails
    with live.client() as client:
        refused = client.post("/models/too-long/deploy", headers=KEY, json={"force": True})
        agreed = agreement(client, model_store)
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "model_load_failed"
    message = refused.json()["error"]["message"]
    assert message == ("model too-long failed to load: its warm-up inference failed: ONNX Runtime could not load or "
                       "run it")  # our words: ONNX Runtime's own text is only logged
    assert str(model_store.root) not in refused.text and "Traceback" not in refused.text
    assert agreed["readyz"] == "tiny-a"


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SSA_HOME": str(home), "SSA_BOOTSTRAP": "false", "SSA_API_KEY": API_KEY,
           "SSA_REDIS_URL": "redis://127.0.0.1:6379/15", "SSA_ACTIVE_POLL_S": "0.2", "SSA_PROVIDER": "cpu"}
    launcher = "import sys; from ssa_core.cli.main import main; sys.argv = ['ssa'] + sys.argv[1:]; sys.exit(main())"
    command = [sys.executable, "-c", launcher, "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_after_a_deploy_a_killed_and_restarted_api_serves_what_active_json_names(
        model_store: ArtifactStore, tiny_model_dir: Path, tmp_path: Path) -> None:
    publish_variant(model_store, tiny_model_dir, "spam", labels=["ham", "spam"])
    publish_variant(model_store, tiny_model_dir, "spam-2", labels=["spam", "ham"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = serve(model_store.root, port)
    try:
        assert wait_ready(url, first)["model_id"] == "tiny-a"
        with httpx.Client(base_url=url, timeout=30) as client:
            deployed = client.post("/models/spam/deploy", headers=KEY, json={"force": True})
            before = agreement(client, model_store)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=20)
    assert deployed.status_code == 200 and before["readyz"] == "spam"
    report = gate_and_deploy(model_store, "always", "spam-2")  # then the worker's gate deploys while the API is down
    assert report.deployed and model_store.active_model_id() == "spam-2"
    second = serve(model_store.root, port)
    try:
        assert wait_ready(url, second)["model_id"] == "spam-2"
        with httpx.Client(base_url=url, timeout=30) as client:
            after = agreement(client, model_store)
            listing = client.get("/models").json()
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=20)
    assert after["readyz"] == "spam-2"
    assert json.dumps(listing).count(str(model_store.root)) == 0
