"""Bounded paging, DELETE /jobs/{id}, jobs' disk use, the retention of ended jobs and the job metrics, with a private
Redis, real job folders and the real app (no worker: the files a worker writes are written here)."""

from __future__ import annotations

import re
import time
from typing import Any

from jobs.queuestats import queue_depth
from jobs.removal import DAY_S, expire_jobs
from tests.worker.procs import wait_for
from tests.worker.stack import JobStack
from worker.reaper import Reaper


def age(stack: JobStack, job_id: str, ended_days_ago: float, ran_s: float = 60.0) -> None:
    """Move an ended job's times into the past (created, started and finished), index scores included."""
    job = stack.jobs.get(job_id)
    assert job is not None and job.terminal
    finished = time.time() - ended_days_ago * DAY_S
    created = finished - ran_s - 5
    stack.jobs.redis.hset(stack.jobs.job_key(job_id), mapping={
        "created_at": created, "started_at": finished - ran_s, "finished_at": finished, "updated_at": finished})
    for key in (stack.jobs.index_key(), stack.jobs.index_key(job.status)):
        stack.jobs.redis.zadd(key, {job_id: created})


def ended_job(stack: JobStack, rows: list[dict[str, Any]]) -> str:
    job_id = stack.submit_ok(rows)
    assert stack.client.post(f"/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    return job_id


def test_paging_parameters_out_of_range_are_422_naming_the_field(stack: JobStack,
                                                                  sentiment_rows: list[dict[str, Any]]) -> None:
    for params, field in (({"offset": "3.4e23"}, "offset"), ({"offset": 10**19}, "offset"),
                          ({"offset": 1_000_001}, "offset"), ({"limit": 10**30}, "limit")):
        response = stack.client.get("/jobs", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.text
    assert stack.client.get("/jobs", params={"offset": 1_000_000}).json()["jobs"] == []
    job_id = stack.submit_ok(sentiment_rows[:20])
    huge = stack.client.get(f"/jobs/{job_id}/labels", params={"iteration": "3.4e23"})
    assert huge.status_code == 422 and "iteration" in huge.text


def test_delete_only_ended_jobs_with_their_files(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    queued = stack.submit_ok(sentiment_rows[:20])
    refused = stack.client.delete(f"/jobs/{queued}")
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "job_active"
    assert refused.json()["error"]["detail"] == {"status": "queued"}
    stack.jobs.redis.hset(stack.jobs.job_key(queued), "status", "running")  # as a worker's claim leaves it
    assert stack.client.delete(f"/jobs/{queued}").json()["error"]["detail"] == {"status": "running"}
    assert stack.store.job_dir(queued).is_dir()

    ended = ended_job(stack, sentiment_rows[20:40])
    folder = stack.store.job_dir(ended)
    assert folder.is_dir() and any(folder.iterdir())
    assert stack.client.delete(f"/jobs/{ended}", headers={"X-API-Key": "wrong"}).status_code == 401
    done = stack.client.delete(f"/jobs/{ended}")
    assert done.status_code == 204 and done.content == b""
    assert not folder.exists() and list(stack.store.staging_root.iterdir()) == []
    assert stack.client.get(f"/jobs/{ended}").status_code == 404
    assert stack.client.delete(f"/jobs/{ended}").status_code == 404
    assert stack.client.delete("/jobs/Not..Valid").status_code == 422
    assert [job["id"] for job in stack.client.get("/jobs").json()["jobs"]] == [queued]
    assert stack.client.get("/jobs", params={"status": "cancelled"}).json()["total"] == 0
    assert stack.jobs.events(ended) == []


def test_jobs_show_their_size_on_disk(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    job_id = stack.submit_ok(sentiment_rows[:20])
    folder = stack.store.job_dir(job_id)
    before = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    (folder / "labels").mkdir()
    (folder / "labels" / "iter1.jsonl").write_bytes(b"x" * 1000)
    one = stack.client.get(f"/jobs/{job_id}").json()
    listed = stack.client.get("/jobs").json()["jobs"][0]
    assert before > 0 and one["disk_bytes"] == before + 1000 == listed["disk_bytes"]


def test_retention_removes_jobs_that_ended_long_enough_ago(stack: JobStack,
                                                           sentiment_rows: list[dict[str, Any]]) -> None:
    old, recent = ended_job(stack, sentiment_rows[:20]), ended_job(stack, sentiment_rows[20:40])
    still_queued = stack.submit_ok(sentiment_rows[40:60])
    age(stack, old, ended_days_ago=10)
    age(stack, recent, ended_days_ago=2)
    stack.jobs.redis.zadd(stack.jobs.index_key("queued"), {still_queued: time.time() - 30 * DAY_S})
    assert expire_jobs(stack.jobs, stack.store, retention_days=0) == []  # 0: off
    assert expire_jobs(stack.jobs, stack.store, retention_days=7) == [old]
    assert stack.jobs.get(old) is None and not stack.store.job_dir(old).exists()
    assert stack.jobs.get(recent) is not None and stack.store.job_dir(recent).is_dir()
    assert stack.jobs.get(still_queued) is not None
    assert expire_jobs(stack.jobs, stack.store, retention_days=1) == [recent]


def test_the_workers_housekeeping_applies_the_retention_periodically(
        stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    old = ended_job(stack, sentiment_rows[:20])
    age(stack, old, ended_days_ago=40)
    reaper = Reaper(stack.jobs, lambda job_id: None, interval_s=0.05, marker_ttl_s=60,
                    expire=lambda: expire_jobs(stack.jobs, stack.store, 30))
    reaper.start()
    try:
        # remove_job deletes the record first, then the folder: wait for both
        wait_for(lambda: (stack.jobs.get(old) is None and not stack.store.job_dir(old).exists()) or None, 10,
                 "the retention sweep", every=0.05)
    finally:
        reaper.stop()
    assert not stack.store.job_dir(old).exists()


def metric(text: str, name: str) -> float | None:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_metrics_show_the_job_queue_jobs_by_status_and_run_times(stack: JobStack,
                                                                 sentiment_rows: list[dict[str, Any]]) -> None:
    first = stack.submit_ok(sentiment_rows[:20])
    stack.submit_ok(sentiment_rows[20:40])
    ran = ended_job(stack, sentiment_rows[40:60])
    age(stack, ran, ended_days_ago=0.01, ran_s=90)
    ended_job(stack, sentiment_rows[60:80])  # cancelled while queued: it never ran
    text = stack.client.get("/metrics").text
    assert queue_depth(stack.jobs.redis, "ssa-train") == 4  # every submission sent a message; no worker took one
    assert metric(text, "ssa_job_store_up") == 1
    assert metric(text, "ssa_job_queue_depth") == 4
    assert metric(text, 'ssa_jobs{status="queued"}') == 2
    assert metric(text, 'ssa_jobs{status="cancelled"}') == 2
    assert metric(text, 'ssa_jobs{status="running"}') == 0
    assert metric(text, 'ssa_job_duration_seconds_count{status="cancelled"}') == 1
    assert metric(text, 'ssa_job_duration_seconds_sum{status="cancelled"}') == 90
    assert metric(text, 'ssa_job_duration_seconds_bucket{le="60.0",status="cancelled"}') == 0
    assert metric(text, 'ssa_job_duration_seconds_bucket{le="120.0",status="cancelled"}') == 1
    assert metric(text, 'ssa_job_duration_seconds_count{status="succeeded"}') == 0
    assert first
    stack.redis.kill()
    down = stack.client.get("/metrics")
    assert down.status_code == 200 and metric(down.text, "ssa_job_store_up") == 0
    assert metric(down.text, "ssa_job_queue_depth") is None
