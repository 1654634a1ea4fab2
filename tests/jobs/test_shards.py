"""The shard plan and the shard state in a real Redis: ranges cover the input once, a duplicate of a live shard is
deferred, a shard counts once however often it runs, attempts run out, cancel and the end of the job are seen."""

from __future__ import annotations

import time

from jobs.label_shards import shard_ranges
from jobs.labelspec import LabelDataRecord, LabelJobSpec
from jobs.shards import Join, ShardStore
from jobs.store import JobStore
from tests.worker.procs import RedisServer

JOB = "0123456789abcdef0123456789abcdef"


def test_shard_ranges_cover_every_row_once_in_order() -> None:
    ranges = shard_ranges(45, 20)
    assert [(r.shard, r.start, r.end) for r in ranges] == [(0, 0, 20), (1, 20, 40), (2, 40, 45)]
    assert ranges[2].rows == 5 and ranges[2].describe() == "shard 2 (rows 41-45)"
    assert shard_ranges(0, 20) == [] and len(shard_ranges(20, 20)) == 1


def running_job(redis_server: RedisServer) -> tuple[JobStore, ShardStore, str]:
    jobs = JobStore.from_url(redis_server.url)
    data = LabelDataRecord(file="input.jsonl", uploaded="rows.jsonl", text_column="text", label_column="label",
                           task="classification", labelled=False, labels=[], pair=False, rows=45)
    jobs.create(JOB, config=LabelJobSpec(model_id="m", shard_rows=20), data=data, model_id="m")
    claim = jobs.claim(JOB, token="plan", worker="w", ttl_s=30, max_attempts=3)
    assert claim.outcome == "claimed"
    shards = ShardStore(jobs)
    shards.save_plan(JOB, "plan", shard_ranges(45, 20))
    return jobs, shards, "plan"


def join(shards: ShardStore, shard: int, token: str, job_token: str = "plan", max_attempts: int = 3) -> Join:
    return shards.join(JOB, shard, job_token=job_token, token=token, ttl_s=30, max_attempts=max_attempts,
                       now=time.time())


def test_a_shard_runs_once_at_a_time_and_counts_once(redis_server: RedisServer) -> None:
    jobs, shards, token = running_job(redis_server)
    job = jobs.get(JOB)
    assert job is not None and job.kind == "ssa-label" and isinstance(job.config, LabelJobSpec)
    plan = shards.plan(JOB)
    assert plan is not None and plan.rows == 45 and not plan.dispatched
    first = join(shards, 0, "copy-a")
    assert first.outcome == "claimed" and first.attempt == 1
    duplicate = join(shards, 0, "copy-b")
    assert duplicate.outcome == "leased" and duplicate.detail == "copy-a"
    assert shards.set_rows(JOB, 0, 16) == 16 and shards.set_rows(JOB, 1, 4) == 20
    assert shards.finish_shard(JOB, 0, 20) == 1 and shards.finish_shard(JOB, 0, 20) == 1  # counted once
    shards.release(JOB, 0, "copy-a")
    assert join(shards, 0, "copy-c").outcome == "done"
    assert shards.done(JOB) == {0} and jobs.update(JOB, token, progress=0.5)


def test_attempts_run_out_and_the_end_of_the_job_is_seen(redis_server: RedisServer) -> None:
    jobs, shards, token = running_job(redis_server)
    for attempt, copy in ((1, "a"), (2, "b")):
        found = join(shards, 1, copy, token, max_attempts=2)
        assert (found.outcome, found.attempt) == ("claimed", attempt)
        shards.release(JOB, 1, copy)  # the copy died or failed
    assert join(shards, 1, "c", token, max_attempts=2).outcome == "exhausted"
    assert join(shards, 2, "d", job_token="other").outcome == "lost"  # another attempt holds the job's lease
    assert jobs.request_cancel(JOB).outcome == "requested"
    assert join(shards, 2, "e", token).outcome == "cancelled"
    assert jobs.fail_if_active(JOB, "stop")
    assert join(shards, 2, "f", token).outcome == "terminal"


def test_label_shard_message_travels_as_todays_task_arguments() -> None:
    from jobs.label_shards import LabelShardMessage, ShardRange

    message = LabelShardMessage(job_id="j1", shard=ShardRange(shard=2, start=4000, end=5000))
    assert message.args() == ("j1", {"shard": 2, "start": 4000, "end": 5000})
    assert LabelShardMessage.from_args(*message.args()) == message
