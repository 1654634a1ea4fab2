"""First start with an empty store: one bootstrap job on the shipped sample, through the real queue."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from service.submissions.bootstrap import BOOTSTRAP_MODEL_ID, Bootstrap
from tests.worker.procs import RedisServer, queue_length
from tests.worker.stack import JobStack


def test_an_empty_store_gets_one_bootstrap_job_however_often_the_api_starts(
        tmp_path: Path, redis_server: RedisServer, base_models: str) -> None:
    first = JobStack(tmp_path, redis_server, base_models, bootstrap=True)
    try:
        bootstrap: Bootstrap = first.client.app.state.bootstrap  # type: ignore[attr-defined]
        job_id = bootstrap.job_id
        assert job_id is not None and bootstrap.state == "submitted"
        job = first.job(job_id)
        assert job["model_id"] == BOOTSTRAP_MODEL_ID
        assert (job["config"]["deploy"], job["config"]["base_model"], job["config"]["method"]) == \
            ("always", "minilm", "hybrid")
        assert (job["data"]["train_examples"], job["data"]["dev_examples"]) == (600, 200)
        ready = first.client.get("/readyz")
        assert ready.status_code == 503
        shown = ready.json()["bootstrap"]
        assert (shown["state"], shown["job_id"], shown["status"]) == ("submitted", job_id, "queued")
    finally:
        first.close()
    again = JobStack(tmp_path, redis_server, base_models, bootstrap=True)  # the API restarts
    try:
        assert again.client.app.state.bootstrap.job_id == job_id  # type: ignore[attr-defined]
        assert queue_length(redis_server.client()) == 1
        assert again.client.get("/jobs").json()["total"] == 1
    finally:
        again.close()


def test_no_bootstrap_with_a_model_or_when_disabled(tmp_path: Path, stack: JobStack, tiny_model_dir: Path) -> None:
    submitter = stack.client.app.state.job_submitter  # type: ignore[attr-defined]
    disabled = Bootstrap(stack.settings, stack.store, stack.jobs, submitter)
    assert disabled.ensure() is None and disabled.state == "disabled" and disabled.status() is None
    enabled = stack.settings.model_copy(update={"bootstrap": True})
    shutil.copytree(tiny_model_dir, stack.store.models_root / "already-here")
    present = Bootstrap(enabled, stack.store, stack.jobs, submitter)
    assert present.ensure() is None and present.state == "not_needed"
    assert queue_length(stack.redis.client()) == 0


def test_a_failed_submission_is_reported_not_raised(tmp_path: Path, stack: JobStack) -> None:
    enabled = stack.settings.model_copy(update={"bootstrap": True})
    submitter = stack.client.app.state.job_submitter  # type: ignore[attr-defined]
    broken = Bootstrap(enabled, stack.store, stack.jobs, submitter, sample_dir=tmp_path / "missing")
    asyncio.run(broken.on_startup(stack.client.app))  # type: ignore[arg-type]
    status = broken.status()
    assert status is not None and status["state"] == "error"
    assert status["error"].startswith("could not submit the bootstrap job: FileNotFoundError")
