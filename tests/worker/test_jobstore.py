"""JobStore against a real Redis: state changes, leases, attempts, cancellation, idempotency keys, listing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs.records import Claim, Columns, DataRecord, FilePair, IdempotencyBinding, IterationSummary
from jobs.spec import TrainJobSpec
from jobs.store import JobStore
from tests.worker.procs import RedisServer

SPEC = TrainJobSpec(iterations=2)
DATA = DataRecord(files=FilePair(train="train.jsonl"), uploaded=FilePair(train="t.jsonl"), columns=Columns(),
                  task="classification", labels=["a", "b"], pair=False, train_examples=8, dev_examples=2)
ITERATION = IterationSummary(iteration=0, metric="accuracy", dev_metric=0.5, dev={"accuracy": 0.5})


@pytest.fixture
def jobs(redis_server: RedisServer) -> JobStore:
    return JobStore.from_url(redis_server.url)


def make(jobs: JobStore, job_id: str = "job1") -> str:
    jobs.create(job_id, config=SPEC, data=DATA, model_id=f"model-{job_id}")
    return job_id


def claim(jobs: JobStore, job_id: str, token: str, ttl_s: float = 5.0, max_attempts: int = 3) -> Claim:
    return jobs.claim(job_id, token=token, worker=f"w-{token}", ttl_s=ttl_s, max_attempts=max_attempts)


def test_create_then_get_round_trips_every_field(jobs: JobStore) -> None:
    make(jobs)
    job = jobs.get("job1")
    assert job is not None
    assert (job.status, job.stage, job.attempts, job.model_id) == ("queued", "queued", 0, "model-job1")
    assert job.config == SPEC and job.data == DATA
    assert job.eta_s is None and job.error is None and not job.cancel_requested
    assert jobs.get("nope") is None


def test_claim_takes_the_lease_and_a_second_copy_is_told_who_holds_it(jobs: JobStore) -> None:
    make(jobs)
    first = claim(jobs, "job1", "a")
    assert (first.outcome, first.attempt) == ("claimed", 1)
    assert jobs.lease_holder("job1") == "a"
    second = claim(jobs, "job1", "b")
    assert (second.outcome, second.detail) == ("leased", "a")
    job = jobs.get("job1")
    assert job is not None and (job.status, job.attempts, job.worker) == ("running", 1, "w-a")


def test_only_the_lease_holder_may_write(jobs: JobStore) -> None:
    make(jobs)
    claim(jobs, "job1", "a")
    assert jobs.update("job1", "a", stage="training", progress=0.5, iterations=[ITERATION])
    assert not jobs.update("job1", "b", stage="hijacked")
    assert not jobs.heartbeat("job1", "b", 5)
    assert not jobs.finish("job1", "b", "failed", error="no")
    job = jobs.get("job1")
    assert job is not None and (job.stage, job.progress, job.iterations) == ("training", 0.5, [ITERATION])
    assert jobs.finish("job1", "a", "succeeded", progress=1.0)
    job = jobs.get("job1")
    assert job is not None and job.status == "succeeded" and job.finished_at is not None
    assert jobs.lease_holder("job1") is None
    assert claim(jobs, "job1", "c").outcome == "terminal"


def test_heartbeat_keeps_the_lease_alive_and_an_expired_lease_can_be_taken_over(jobs: JobStore) -> None:
    make(jobs)
    claim(jobs, "job1", "a", ttl_s=0.3)
    for _ in range(3):
        time.sleep(0.15)
        assert jobs.heartbeat("job1", "a", 0.3)
    assert claim(jobs, "job1", "b").outcome == "leased"
    time.sleep(0.4)  # no heartbeat: the holder died
    taken = claim(jobs, "job1", "b")
    assert (taken.outcome, taken.attempt) == ("claimed", 2)
    assert not jobs.heartbeat("job1", "a", 0.3)


def test_a_job_whose_worker_keeps_dying_fails_after_max_attempts(jobs: JobStore) -> None:
    make(jobs)
    for attempt in (1, 2, 3):
        assert claim(jobs, "job1", f"t{attempt}", ttl_s=0.05, max_attempts=3).attempt == attempt
        time.sleep(0.08)  # the worker is SIGKILLed: its lease runs out
    final = claim(jobs, "job1", "t4", max_attempts=3)
    assert final.outcome == "exhausted"
    job = jobs.get("job1")
    assert job is not None and job.status == "failed" and job.attempts == 3
    assert job.error == ("gave up after 3 attempts; last: the worker stopped while running it (killed, out of "
                         "memory or over its time limit)")
    assert jobs.list_jobs(status="failed")[1] == 1 and jobs.list_jobs(status="running")[1] == 0


def test_retry_goes_back_to_queued_and_keeps_the_last_error(jobs: JobStore) -> None:
    make(jobs)
    claim(jobs, "job1", "a")
    assert jobs.finish("job1", "a", "queued", stage="waiting to retry", error="RuntimeError: boom")
    job = jobs.get("job1")
    assert job is not None and (job.status, job.finished_at, job.error) == ("queued", None, "RuntimeError: boom")
    assert claim(jobs, "job1", "b").attempt == 2


def test_cancelling_a_queued_job_means_it_never_starts(jobs: JobStore) -> None:
    make(jobs)
    assert jobs.request_cancel("job1") == ("cancelled", "cancelled")
    assert claim(jobs, "job1", "a").outcome == "terminal"
    job = jobs.get("job1")
    assert job is not None and job.status == "cancelled" and job.attempts == 0
    assert jobs.request_cancel("job1") == ("ended", "cancelled")
    assert jobs.request_cancel("missing") == ("missing", "")


def test_cancelling_a_running_job_sets_the_flag_and_a_redelivery_ends_it(jobs: JobStore) -> None:
    make(jobs)
    claim(jobs, "job1", "a", ttl_s=0.05)
    assert jobs.request_cancel("job1") == ("requested", "running")
    assert jobs.cancel_requested("job1")
    time.sleep(0.08)  # the worker died before reaching its next step
    assert claim(jobs, "job1", "b").outcome == "cancelled"
    job = jobs.get("job1")
    assert job is not None and job.status == "cancelled"


def test_fail_if_active_fails_only_unfinished_jobs(jobs: JobStore) -> None:
    make(jobs, "j1")
    make(jobs, "j2")
    claim(jobs, "j1", "a")
    assert jobs.fail_if_active("j1", "time limit exceeded")
    assert jobs.lease_holder("j1") is None
    claim(jobs, "j2", "b")
    jobs.finish("j2", "b", "succeeded")
    assert not jobs.fail_if_active("j2", "late")
    j1, j2 = jobs.get("j1"), jobs.get("j2")
    assert j1 is not None and (j1.status, j1.error) == ("failed", "time limit exceeded")
    assert j2 is not None and j2.status == "succeeded" and j2.error is None


def test_list_is_newest_first_paged_and_filtered(jobs: JobStore) -> None:
    for index in range(5):
        make(jobs, f"j{index}")
        time.sleep(0.002)
    claim(jobs, "j1", "a")
    page, total = jobs.list_jobs(offset=1, limit=2)
    assert total == 5 and [job.id for job in page] == ["j3", "j2"]
    running, count = jobs.list_jobs(status="running")
    assert count == 1 and [job.id for job in running] == ["j1"]
    assert jobs.list_jobs(status="queued")[1] == 4


def test_idempotency_key_binds_once(jobs: JobStore) -> None:
    assert jobs.reserve_idempotency_key("k", "j1", "print-1", 60) is None
    assert jobs.reserve_idempotency_key("k", "j2", "print-2", 60) == IdempotencyBinding("j1", "print-1")
    jobs.release_idempotency_key("k", "j2")  # not its binding: kept
    assert jobs.reserve_idempotency_key("k", "j3", "print-3", 60) is not None
    jobs.release_idempotency_key("k", "j1")
    assert jobs.reserve_idempotency_key("k", "j3", "print-3", 60) is None
    assert 0 < int(jobs.redis.ttl("ssa:idem:k")) <= 60


def test_events_are_kept_in_order(jobs: JobStore) -> None:
    make(jobs)
    jobs.add_event("job1", "deferred", holder="a")
    names = [(event["event"], event.get("holder")) for event in jobs.events("job1")]
    assert names == [("created", None), ("deferred", "a")]


def test_a_model_id_is_reserved_once_even_by_parallel_submissions(redis_server: RedisServer) -> None:
    stores = [JobStore.from_url(redis_server.url) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        holders = list(pool.map(lambda n: stores[n].reserve_model_id("mine", f"job{n}", 60), range(8)))
    winners = [n for n, holder in enumerate(holders) if holder is None]
    assert len(winners) == 1
    assert set(holders) == {None, f"job{winners[0]}"}
    assert stores[0].model_id_holder("mine") == f"job{winners[0]}"


def test_a_model_id_reservation_lasts_while_its_job_runs_and_ends_with_it(jobs: JobStore) -> None:
    for job_id, end in (("j-fail", "fail"), ("j-cancel", "cancel"), ("j-ok", "succeed")):
        assert jobs.reserve_model_id(f"model-{job_id}", job_id, ttl_s=60) is None
        make(jobs, job_id)
        assert jobs.redis.ttl(jobs.model_id_key(f"model-{job_id}")) == -1  # recorded: held until the job ends
        assert jobs.reserve_model_id(f"model-{job_id}", "other", ttl_s=60) == job_id
        if end == "fail":
            assert claim(jobs, job_id, "t").outcome == "claimed"
            assert jobs.finish(job_id, "t", "failed", error="boom")
        elif end == "cancel":
            assert jobs.request_cancel(job_id).outcome == "cancelled"
        else:
            assert claim(jobs, job_id, "t").outcome == "claimed"
            jobs.finish(job_id, "t", "queued")  # a retry keeps the reservation
            assert jobs.model_id_holder(f"model-{job_id}") == job_id
            assert claim(jobs, job_id, "t2").outcome == "claimed"
            assert jobs.finish(job_id, "t2", "succeeded")
        assert jobs.model_id_holder(f"model-{job_id}") is None
    assert jobs.reserve_model_id("model-j-fail", "again", ttl_s=60) is None


def test_release_model_id_drops_only_its_own_reservation(jobs: JobStore) -> None:
    assert jobs.reserve_model_id("mine", "job1", ttl_s=60) is None
    jobs.release_model_id("mine", "job2")
    assert jobs.model_id_holder("mine") == "job1"
    jobs.release_model_id("mine", "job1")
    assert jobs.model_id_holder("mine") is None
    assert jobs.reserve_model_id("mine", "job3", ttl_s=60) is None
    assert 0 < int(jobs.redis.ttl(jobs.model_id_key("mine"))) <= 60  # unrecorded: it expires by itself
