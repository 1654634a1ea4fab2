"""Reliability of training jobs with real Redis and real `ssa worker` processes: SIGKILL mid-job, duplicate
deliveries, Redis restarts, jobs that crash every time, time limits. (Storage failures: test_storage_failures.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.worker.procs import queue_length, unacked_count, wait_for
from tests.worker.stack import QUICK, JobStack, events

pytestmark = pytest.mark.timeout(240)


def kill_mid_job_then_resume(stack: JobStack, rows: list[dict[str, Any]], **env: str) -> dict[str, Any]:
    """Run a 3-iteration job on worker `first`, SIGKILL it after the first checkpoint, start worker `second`;
    return the finished job after checking that it resumed from the checkpoint, once, on `second`."""
    first = stack.worker("first", **env)
    job_id = stack.submit_ok(rows[:48], {**QUICK, "iterations": 3, "batch_size": 8})
    checkpoint = stack.store.job_dir(job_id) / "checkpoints" / "latest.json"
    stack.wait_stage(job_id, lambda job: checkpoint.is_file(), what="the first iteration checkpoint")
    first.kill()
    killed_at = time.time()
    assert stack.job(job_id)["status"] == "running"  # nobody told Redis: the worker just vanished

    stack.worker("second", **env)
    job = stack.wait_status(job_id, "succeeded", "failed")
    assert job["status"] == "succeeded", job["error"]
    starts = events(job, "started")
    assert [(e["attempt"], e["worker"].split("@")[0]) for e in starts] == [(1, "first"), (2, "second")]
    assert starts[1]["at"] > killed_at
    assert job["attempts"] == 2 and len(events(job, "succeeded")) == 1
    assert [i["iteration"] for i in job["iterations"]] == [0, 1, 2]
    log = stack.client.get(f"/jobs/{job_id}/log").text
    assert "[attempt 2] resuming from the checkpoint" in log
    assert "[attempt 2] iteration 0:" not in log  # iteration 0 was not trained again
    assert stack.store.has_model(job["model_id"])
    assert not list(stack.store.staging_root.iterdir())
    assert not checkpoint.parent.exists()  # an ended job is never resumed: its checkpoints are gone
    return job


def test_sigkill_mid_job_resumes_after_the_visibility_timeout(stack: JobStack,
                                                              sentiment_rows: list[dict[str, Any]]) -> None:
    """The broker path: the unacknowledged message is restored once SSA_VISIBILITY_TIMEOUT_S (6 s) has passed."""
    job = kill_mid_job_then_resume(stack, sentiment_rows, SSA_VISIBILITY_TIMEOUT_S="6", SSA_REAPER_INTERVAL_S="0")
    assert events(job, "requeued") == []
    client = stack.redis.client()
    wait_for(lambda: queue_length(client) == 0 and unacked_count(client) == 0, 30, "the queue to drain")


def test_sigkill_mid_job_is_requeued_by_the_reaper(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    """The reaper path: with an hour-long visibility timeout, the job still resumes once its lease has expired."""
    job = kill_mid_job_then_resume(stack, sentiment_rows, SSA_VISIBILITY_TIMEOUT_S="3600", SSA_REAPER_INTERVAL_S="1")
    requeued = events(job, "requeued")
    assert len(requeued) == 1 and requeued[0]["attempt"] == 1


def test_second_delivery_while_leased_is_deferred_not_run(stack: JobStack,
                                                          sentiment_rows: list[dict[str, Any]]) -> None:
    from jobs.producer import enqueue_training, producer_app

    stack.start_workers("one", "two")
    job_id = stack.submit_ok(sentiment_rows[:48], {**QUICK, "iterations": 2, "batch_size": 4})
    running = stack.wait_stage(job_id, lambda job: job["status"] == "running", what="the job to run")
    enqueue_training(producer_app(stack.redis.url), job_id)  # a duplicate message, as a redelivery would be

    job = stack.wait_status(job_id, "succeeded", "failed")
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1 and len(events(job, "started")) == 1
    deferred = events(job, "deferred")
    assert deferred, "the duplicate delivery was not deferred"
    assert all(e["holder"].startswith(running["worker"]) for e in deferred)
    wait_for(lambda: queue_length(stack.redis.client()) == 0 and unacked_count(stack.redis.client()) == 0, 30,
             "the deferred copy to be dropped once the job ended")
    assert len(events(stack.job(job_id), "started")) == 1


def test_redis_restart_loses_no_queued_job(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    ids = [stack.submit_ok(sentiment_rows[i * 40:(i + 1) * 40]) for i in range(2)]
    assert queue_length(stack.redis.client()) == 2
    stack.redis.kill()
    stack.redis.start()  # same port and AOF directory

    assert queue_length(stack.redis.client()) == 2
    assert [stack.job(job_id)["status"] for job_id in ids] == ["queued", "queued"]
    stack.worker("after-restart")
    for job_id in ids:
        job = stack.wait_status(job_id, "succeeded", "failed")
        assert job["status"] == "succeeded", job["error"]
        assert stack.store.has_model(job["model_id"])


def test_job_that_crashes_every_time_fails_after_max_attempts(stack: JobStack,
                                                              sentiment_rows: list[dict[str, Any]]) -> None:
    stack.worker("crashy", SSA_MAX_ATTEMPTS="3")
    job_id = stack.submit_ok(sentiment_rows[:40], {**QUICK, "base_model": "broken"})

    job = stack.wait_status(job_id, "succeeded", "failed", timeout=90)
    assert job["status"] == "failed"
    assert job["attempts"] == 3
    assert job["error"].startswith("failed after 3 attempts; last: ")
    assert len(events(job, "attempt-failed")) == 3
    assert not stack.store.list_models()
    assert queue_length(stack.redis.client()) == 0


def test_job_over_its_time_limit_fails_with_a_clear_error(stack: JobStack,
                                                          sentiment_rows: list[dict[str, Any]]) -> None:
    stack.worker("slow", SSA_TASK_SOFT_TIME_LIMIT_S="2", SSA_TASK_TIME_LIMIT_S="30")
    # 480 single-example steps: far more than 2 s even on a fast machine
    job_id = stack.submit_ok(sentiment_rows[:120], {**QUICK, "iterations": 4, "batch_size": 1})
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=60)
    assert job["status"] == "failed"
    assert job["error"] == "time limit exceeded: the job ran longer than SSA_TASK_SOFT_TIME_LIMIT_S=2 s"
    assert job["attempts"] == 1 and not stack.store.list_models()
    assert list(stack.store.staging_root.iterdir()) == []
