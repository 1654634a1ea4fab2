"""The reaper against a real Redis: a running job whose lease expired is queued again, once per dead run."""

from __future__ import annotations

import time

from jobs.spec import TrainJobSpec
from jobs.store import JobStore
from tests.worker.procs import RedisServer
from tests.worker.test_jobstore import DATA
from worker.reaper import Reaper


def test_orphans_are_requeued_once_and_live_jobs_are_left_alone(redis_server: RedisServer) -> None:
    jobs = JobStore.from_url(redis_server.url)
    for job_id in ("dead", "alive", "waiting"):
        jobs.create(job_id, config=TrainJobSpec(), data=DATA, model_id=job_id)
    jobs.claim("dead", token="a", worker="wa", ttl_s=0.05, max_attempts=3)
    jobs.claim("alive", token="b", worker="wb", ttl_s=30, max_attempts=3)
    time.sleep(0.1)
    sent: list[str] = []
    reaper = Reaper(jobs, sent.append, interval_s=1, marker_ttl_s=60)

    assert jobs.orphans() == ["dead"]
    assert reaper.sweep() == ["dead"] and sent == ["dead"]
    assert reaper.sweep() == [] and sent == ["dead"]  # the same dead run is not queued twice
    assert [e["event"] for e in jobs.events("dead")][-1] == "requeued"

    jobs.claim("dead", token="c", worker="wc", ttl_s=0.05, max_attempts=3)  # attempt 2 dies as well
    time.sleep(0.1)
    assert reaper.sweep() == ["dead"] and sent == ["dead", "dead"]
