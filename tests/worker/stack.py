"""A job stack for tests: a private Redis, an artifact store, the real API app in-process (TestClient) and real
`ssa worker` processes started on demand."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from jobs.store import JobStore
from service.app import create_app
from service.settings import Settings
from ssa_core.runtime.artifacts import ArtifactStore
from tests.worker.procs import RedisServer, WorkerProcess, jsonl, wait_for, worker_env

API_KEY = "jobs-test-key"
QUICK = {"base_model": "tiny", "iterations": 1, "max_length": 32, "batch_size": 8, "method": "hybrid"}


class JobStack:
    def __init__(self, tmp: Path, redis: RedisServer, base_models: str, home: Path | None = None,
                 **settings: Any) -> None:
        self.tmp, self.redis, self.base_models = tmp, redis, base_models
        self.home = home or tmp / "home"
        self.settings = Settings.model_validate({
            "home": self.home, "redis_url": redis.url, "api_key": API_KEY, "bootstrap": False,
            "allowed_base_models": base_models, "provider": "cpu", "intra_op_threads": 1, "active_poll_s": 0.5,
            **settings})
        self.store = ArtifactStore(self.home)
        self.jobs = JobStore.from_url(redis.url)
        self.client = TestClient(create_app(self.settings), headers={"X-API-Key": API_KEY})
        self.client.__enter__()
        self.workers: list[WorkerProcess] = []

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()  # the test is over: no need to wait for a warm shutdown
        self.client.__exit__(None, None, None)

    # ---- workers -------------------------------------------------------------------------------------
    def worker(self, name: str, **env: str) -> WorkerProcess:
        """Start `ssa worker` (extra SSA_* settings in `env`) and wait until it is ready."""
        return self._process(name, env).start()

    def _process(self, name: str, env: dict[str, str]) -> WorkerProcess:
        process = WorkerProcess(name, worker_env(self.home, self.redis.url, self.base_models, **env), self.tmp)
        self.workers.append(process)
        return process

    def start_workers(self, *names: str, **env: str) -> list[WorkerProcess]:
        """Start several workers at once (their imports overlap), then wait until all are ready."""
        started = [self._process(name, env).start(wait=False) for name in names]
        for process in started:
            process.start_wait()
        return started

    def logs(self) -> str:
        return "\n".join(worker.log_tail() for worker in self.workers)

    # ---- jobs ----------------------------------------------------------------------------------------
    def submit(self, train: bytes | list[dict[str, Any]], config: dict[str, Any] | None = None,
               dev: bytes | list[dict[str, Any]] | None = None, key: str | None = None,
               train_name: str = "train.jsonl") -> Any:
        files = {"train": (train_name, train if isinstance(train, bytes) else jsonl(train))}
        if dev is not None:
            files["dev"] = ("dev.jsonl", dev if isinstance(dev, bytes) else jsonl(dev))
        headers = {"Idempotency-Key": key} if key else {}
        return self.client.post("/jobs/ssa-train", files=files, data={"config": json.dumps(config or QUICK)},
                                headers=headers)

    def submit_ok(self, train: bytes | list[dict[str, Any]], config: dict[str, Any] | None = None, **kw: Any) -> str:
        response = self.submit(train, config, **kw)
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 120) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in statuses else None

        return wait_for(reached, timeout, f"job {job_id} to become {'/'.join(statuses)}", every=0.2,
                        on_timeout=lambda: json.dumps(self.job(job_id), indent=1)[-3000:] + self.logs())

    def wait_stage(self, job_id: str, check: Any, timeout: float = 60, what: str = "a stage") -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            assert job["status"] not in ("succeeded", "failed", "cancelled"), f"job ended early: {job}"
            return job if check(job) else None

        return wait_for(reached, timeout, what, every=0.05, on_timeout=self.logs)


def events(job: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [event for event in job.get("events") or [] if event["event"] == name]


def elapsed(since: float) -> float:
    return time.monotonic() - since
