"""The whole path over HTTP: a real API (uvicorn) and a real worker; submit a small slice of movie-sentiment, follow
the job to success, fetch its weak labels and log, and predict with attention from the model it deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.worker.procs import REPO, RedisServer, WorkerProcess, free_port, jsonl, wait_for, worker_env

pytestmark = pytest.mark.timeout(240)
API_KEY = "e2e-key"


@pytest.fixture
def worker(tmp_path: Path, redis_server: RedisServer, base_models: str) -> Iterator[WorkerProcess]:
    """A worker, started without waiting for it: it loads while the API starts, and jobs wait in the queue."""
    process = WorkerProcess("e2e", worker_env(tmp_path / "home", redis_server.url, base_models), tmp_path)
    yield process.start(wait=False)
    process.kill()


@pytest.fixture
def api(tmp_path: Path, redis_server: RedisServer, base_models: str) -> Iterator[str]:
    """uvicorn running service.app:create_app on a free port, with no model yet."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSA_")}
    env.update({"SSA_HOME": str(tmp_path / "home"), "SSA_REDIS_URL": redis_server.url, "SSA_API_KEY": API_KEY,
                "SSA_ALLOWED_BASE_MODELS": base_models, "SSA_BOOTSTRAP": "false", "SSA_PROVIDER": "cpu",
                "SSA_INTRA_OP_THREADS": "1", "SSA_ACTIVE_POLL_S": "0.5", "PYTHONPATH": str(REPO)})
    log = tmp_path / "api.log"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(alive, 60, "the API to answer /healthz", every=0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_train_over_http_then_label_deploy_and_predict(worker: WorkerProcess, api: str,
                                                       sentiment_rows: list[dict[str, Any]]) -> None:
    http = httpx.Client(base_url=api, headers={"X-API-Key": API_KEY}, timeout=30)
    config = {"base_model": "tiny", "method": "hybrid", "iterations": 2, "max_length": 48, "batch_size": 8,
              "deploy": "if_better", "model_id": "movies-e2e"}
    files = {"train": ("train.jsonl", jsonl(sentiment_rows[:64])), "dev": ("dev.jsonl", jsonl(sentiment_rows[64:88]))}
    submitted = http.post("/jobs/ssa-train", files=files, data={"config": json.dumps(config)},
                          headers={"Idempotency-Key": "e2e-1"})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    retried = http.post("/jobs/ssa-train", files=files, data={"config": json.dumps(config)},
                        headers={"Idempotency-Key": "e2e-1"})
    assert retried.json()["job_id"] == job_id  # a retried upload is the same job

    def finished() -> dict[str, Any] | None:
        job = http.get(submitted.json()["status_url"]).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, 180, "the job to finish", every=0.5, on_timeout=worker.log_tail)
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and job["attempts"] == 1 and job["model_id"] == "movies-e2e"
    assert [i["iteration"] for i in job["iterations"]] == [0, 1]
    assert job["iterations"][0]["kept_rate"] is None and 0 < job["iterations"][1]["kept_rate"] <= 1
    assert job["iterations"][1]["label_stats"]["selected"] > 0
    assert job["deployed"] is True and job["deploy_note"] == "deployed: there was no active model"
    assert job["result"]["dev_metric"] == job["iterations"][job["result"]["best_iteration"]]["dev_metric"]

    labels = http.get(f"/jobs/{job_id}/labels")
    assert labels.status_code == 200
    records = [json.loads(line) for line in labels.text.splitlines()]
    assert records and {r["iteration"] for r in records} == {1}
    assert all(t["label"] >= 0 or t["label"] == -1 for r in records for t in r["tokens"])  # graded targets
    assert any(t["label"] > 0 for r in records for t in r["tokens"])
    assert all(r["text"][t["start"]:t["end"]] == t["text"] for r in records for t in r["tokens"])
    assert len(http.get(f"/jobs/{job_id}/labels", params={"iteration": 1}).text.splitlines()) == len(records)
    assert "succeeded: model movies-e2e" in http.get(f"/jobs/{job_id}/log").text

    models = http.get("/models").json()
    assert models["active"] == "movies-e2e" and [m["model_id"] for m in models["models"]] == ["movies-e2e"]
    ready = wait_for(lambda: (r := http.get("/readyz")).status_code == 200 and r.json(), 60,
                     "the API to load the deployed model")
    assert ready["model_id"] == "movies-e2e"
    predicted = http.post("/predict", json={"inputs": ["A warm, funny and beautifully acted film."]})
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    assert body["model_id"] == "movies-e2e"
    tokens = body["predictions"][0]["tokens"]
    assert tokens and all(t["attention"] is not None for t in tokens)
    assert abs(sum(t["attention"] for t in tokens) - 1.0) < 0.05
