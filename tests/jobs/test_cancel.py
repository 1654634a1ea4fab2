"""Cancelling jobs with a real worker: a running job stops at its next step, a queued one never starts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.worker.procs import queue_length, unacked_count, wait_for
from tests.worker.stack import QUICK, JobStack, events

pytestmark = pytest.mark.timeout(180)


def test_cancel_running_and_queued_jobs(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    stack.worker("only")  # one job at a time: the second job waits in the queue
    running = stack.submit_ok(sentiment_rows[:48], {**QUICK, "iterations": 3, "batch_size": 4})
    waiting = stack.submit_ok(sentiment_rows[48:88])
    stack.wait_stage(running, lambda job: job["stage"] == "training" and job["step"] >= 2,
                     what="the first job to train")

    queued = stack.client.post(f"/jobs/{waiting}/cancel")
    assert queued.status_code == 202 and queued.json()["status"] == "cancelled"
    requested = stack.client.post(f"/jobs/{running}/cancel")
    assert requested.status_code == 202
    assert requested.json()["status"] == "running" and requested.json()["cancel_requested"] is True

    stopped = stack.wait_status(running, "cancelled", "succeeded", "failed", timeout=60)
    assert stopped["status"] == "cancelled" and stopped["error"] is None
    assert stopped["step"] < stopped["total_steps"]  # stopped part-way, at a step boundary
    assert not stack.store.list_models() and list(stack.store.staging_root.iterdir()) == []
    assert not (stack.store.job_dir(running) / "checkpoints").exists()
    assert "[attempt 1] cancelled: cancelled in iteration" in stack.client.get(f"/jobs/{running}/log").text

    wait_for(lambda: queue_length(stack.redis.client()) == 0 and unacked_count(stack.redis.client()) == 0, 30,
             "the cancelled job's message to be taken and dropped")
    never = stack.job(waiting)
    assert never["status"] == "cancelled" and never["attempts"] == 0 and never["started_at"] is None
    assert events(never, "started") == [] and events(never, "delivery-terminal")
