"""Job records written before the jobs/ package (fixtures/job-record-v1.json: a succeeded job's Redis hash and
events exactly as the old worker.jobstore wrote them) still read, show and index as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.records import SUCCEEDED, DataRecord, IterationSummary, JobResult
from jobs.spec import TrainJobSpec
from jobs.store import JobStore, encode
from service.schemas.jobs import job_info
from tests.worker.procs import RedisServer

FIXTURE = Path(__file__).parent / "fixtures" / "job-record-v1.json"
JOB_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def stored() -> dict[str, str]:
    return dict(json.loads(FIXTURE.read_text(encoding="utf-8"))["hash"])


@pytest.fixture
def jobs(redis_server: RedisServer, stored: dict[str, str]) -> JobStore:
    store = JobStore.from_url(redis_server.url)
    store.redis.hset(store.job_key(JOB_ID), mapping=stored)
    store.redis.zadd(store.index_key(), {JOB_ID: float(stored["created_at"])})
    store.redis.zadd(store.index_key(SUCCEEDED), {JOB_ID: float(stored["created_at"])})
    for event in json.loads(FIXTURE.read_text(encoding="utf-8"))["events"]:
        store.redis.rpush(store.events_key(JOB_ID), event)
    return store


def test_an_old_record_reads_as_typed_records(jobs: JobStore) -> None:
    job = jobs.get(JOB_ID)
    assert job is not None and job.status == SUCCEEDED and job.deployed is True and job.attempts == 1
    assert isinstance(job.config, TrainJobSpec) and job.config.deploy == "if_better" and job.config.iterations == 2
    assert isinstance(job.data, DataRecord) and job.data.files.train == "train.jsonl" and job.data.files.dev is None
    assert job.data.split is not None and len(job.data.split.dev_rows) == 20 and job.data.split.from_ == "train"
    assert all(isinstance(item, IterationSummary) for item in job.iterations) and len(job.iterations) == 2
    assert job.iterations[1].label_stats is not None and job.iterations[1].label_stats["kept_copies"] == 432
    assert isinstance(job.result, JobResult) and job.result.best_iteration == 1
    assert [event["event"] for event in jobs.events(JOB_ID)] == ["created"]
    assert jobs.list_jobs(status=SUCCEEDED)[1] == 1


# Job settings and record fields added after the fixture was written: an old record reads with their defaults
# (deploy_gate: the deploy gate's report in `result`, None for jobs that ended before the gate existed).
ADDED_SINCE = {"attention_scores": "logit", "deploy_gate": None, "quantize": "none", "int8_min_agreement": 0.99,
               "int8": None, "recipe": "graded", "distractor_share": 0.0, "distractor_sources": "both"}


def with_new_fields(read: object, stored: object) -> object:
    """`read` without the settings added since `stored` was written (each checked to hold its default)."""
    if not isinstance(read, dict) or not isinstance(stored, dict):
        return read
    for key, default in ADDED_SINCE.items():
        if key in read and key not in stored:
            assert read[key] == default, key
    return {k: v for k, v in read.items() if k in stored or k not in ADDED_SINCE}


def test_an_old_record_written_back_is_byte_for_byte_the_same(jobs: JobStore, stored: dict[str, str]) -> None:
    job = jobs.get(JOB_ID)
    assert job is not None
    for name in ("config", "data", "iterations", "result"):
        assert with_new_fields(json.loads(encode(getattr(job, name))), json.loads(stored[name])) == json.loads(
            stored[name]), name


def test_the_api_shows_an_old_record_as_before(jobs: JobStore, stored: dict[str, str]) -> None:
    job = jobs.get(JOB_ID)
    assert job is not None
    full, brief = job_info(job, jobs.events(JOB_ID), full=True), job_info(job)
    shown = full.model_dump(mode="json", by_alias=True)
    for name in ("config", "data", "iterations", "result"):
        assert with_new_fields(shown[name], json.loads(stored[name])) == json.loads(stored[name]), name
    assert brief.data is not None and brief.data.split is not None and brief.data.split.dev_rows == 20
    assert full.events is not None
