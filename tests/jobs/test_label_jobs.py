"""Label jobs end to end with real Redis and real `ssa worker` processes on the tiny (2-layer) model: submit
validation, shards fanned out as a Celery chord and merged in input order, one record per row with offsets, JSONL and
Parquet, the model loaded once per worker process, cancel, and a shard whose worker is SIGKILLed re-run once."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.worker.procs import jsonl, queue_length, unacked_count, wait_for
from tests.worker.stack import JobStack, events

pytestmark = pytest.mark.timeout(300)
MODEL = "tiny-hybrid"


@pytest.fixture
def labelled_stack(stack: JobStack, tiny_model_dir: Path) -> JobStack:
    """The job stack with the tiny model in its store (not active: jobs name it)."""
    assert stack.store.import_model(tiny_model_dir, MODEL) == MODEL
    return stack


def submit_label(stack: JobStack, rows: list[dict[str, Any]] | bytes, config: dict[str, Any] | None = None,
                 name: str = "rows.jsonl", key: str | None = None) -> Any:
    body = rows if isinstance(rows, bytes) else jsonl(rows)
    headers = {"Idempotency-Key": key} if key else {}
    return stack.client.post("/jobs/ssa-label", files={"data": (name, body)},
                             data={"config": json.dumps({"model_id": MODEL, **(config or {})})}, headers=headers)


def submit_label_ok(stack: JobStack, rows: list[dict[str, Any]], config: dict[str, Any] | None = None) -> str:
    response = submit_label(stack, rows, config)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def records(stack: JobStack, job_id: str) -> list[dict[str, Any]]:
    response = stack.client.get(f"/jobs/{job_id}/labels")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def check_records(found: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """One record per input row, in input order, with offsets into the row's text."""
    assert [r["index"] for r in found] == list(range(len(rows)))
    assert [r["row"] for r in found] == list(range(1, len(rows) + 1))
    assert [(r["text"], r["label"]) for r in found] == [(row["text"], str(row["label"])) for row in rows]
    for record in found:
        assert record["words"] and record["tokens"]
        for span in record["tokens"] + record["words"]:
            assert span["text"] == record["text"][span["start"]:span["end"]]
        assert record["prediction"] in record["scores"]
        assert sum(w["probe"] is not None for w in record["words"]) == record["probed_words"] > 0


def model_loads(stack: JobStack) -> int:
    return sum(worker.log().count(f"model cache: loaded model {MODEL}") for worker in stack.workers)


def test_submission_is_validated_before_anything_is_queued(labelled_stack: JobStack,
                                                           sentiment_rows: list[dict[str, Any]]) -> None:
    stack = labelled_stack
    missing = submit_label(stack, sentiment_rows[:5], {"model_id": "no-such-model"})
    assert missing.status_code == 404 and "no-such-model" in missing.json()["error"]["message"]
    odd = [{"text": "fine", "label": "meh"}, {"text": "bad", "label": "awful"}]
    mismatch = submit_label(stack, odd)
    assert mismatch.status_code == 422, mismatch.text
    assert "'awful', 'meh'" in mismatch.json()["error"]["message"]
    assert submit_label(stack, b"", name="rows.jsonl").status_code == 422
    assert submit_label(stack, sentiment_rows[:5], name="rows.txt").status_code == 422
    assert submit_label(stack, sentiment_rows[:5], {"probes_per_row": -1}).status_code == 422
    no_active = stack.client.post("/jobs/ssa-label", files={"data": ("rows.jsonl", jsonl(sentiment_rows[:5]))})
    assert no_active.status_code == 404 and "no model is active" in no_active.json()["error"]["message"]
    assert queue_length(stack.redis.client()) == 0
    assert stack.client.get("/jobs").json()["total"] == 0

    first = submit_label(stack, sentiment_rows[:5], key="label-once")
    again = submit_label(stack, sentiment_rows[:5], key="label-once")
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["created"] is False
    job = stack.job(first.json()["job_id"])
    assert job["kind"] == "ssa-label" and job["model_id"] == MODEL and job["status"] == "queued"
    assert job["data"]["rows"] == 5 and job["data"]["labelled"] is True and job["config"]["shard_rows"] == 2000
    early = stack.client.get(f"/jobs/{job['id']}/labels")
    assert early.status_code == 409 and early.json()["error"]["detail"]["status"] == "queued"
    assert queue_length(stack.redis.client()) == 1


def test_shards_fan_out_over_two_workers_and_merge_in_input_order(labelled_stack: JobStack,
                                                                 sentiment_rows: list[dict[str, Any]]) -> None:
    import pyarrow.parquet as pq

    stack = labelled_stack
    stack.start_workers("one", "two")
    rows = sentiment_rows[:90]
    job_id = submit_label_ok(stack, rows, {"shard_rows": 20, "probes_per_row": 8})
    job = stack.wait_status(job_id, "succeeded", "failed", "cancelled", timeout=240)
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and job["step"] == job["total_steps"] == 5
    assert [e["shards"] for e in events(job, "dispatched")] == [5]
    assert sorted(e["shard"] for e in events(job, "shard-done")) == [0, 1, 2, 3, 4]
    assert len(events(job, "shard-started")) == 5 and len(events(job, "succeeded")) == 1

    found = records(stack, job_id)
    check_records(found, rows)
    assert all(r["probed_words"] == min(8, len(r["words"])) for r in found)
    parquet = stack.client.get(f"/jobs/{job_id}/labels", params={"format": "parquet"})
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("index").to_pylist() == list(range(90))
    assert table.column("text").to_pylist() == [row["text"] for row in rows]
    # the model is loaded once per worker process (each runs one pool process), not once per shard
    assert 1 <= model_loads(stack) <= 2
    job_dir = stack.store.job_dir(job_id)
    assert not (job_dir / "output").exists()
    assert sorted(p.name for p in job_dir.iterdir() if p.name.startswith("labels")) == ["labels.jsonl",
                                                                                        "labels.parquet"]
    log = stack.client.get(f"/jobs/{job_id}/log").text
    assert "90 rows in 5 shards" in log and "succeeded: 90 rows labelled in 5 shards" in log


def test_cancel_stops_every_shard(labelled_stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    stack = labelled_stack
    stack.worker("only")
    rows = (sentiment_rows * 3)[:600]
    job_id = submit_label_ok(stack, rows, {"shard_rows": 50})
    stack.wait_stage(job_id, lambda job: job["progress"] > 0, timeout=120, what="the first shard to make progress")
    cancel = stack.client.post(f"/jobs/{job_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    job = stack.wait_status(job_id, "cancelled", "succeeded", "failed", timeout=120)
    assert job["status"] == "cancelled", job
    client = stack.redis.client()
    wait_for(lambda: queue_length(client) == 0 and unacked_count(client) == 0, 120,
             "every shard message to be taken and dropped")
    job = stack.job(job_id)
    done = events(job, "shard-done")
    assert len(done) < 12 and len(events(job, "cancelled")) == 1
    # the shard running then stopped (unless cancel came between two shards); no shard started afterwards
    assert len(events(job, "shard-started")) - len(done) in (0, 1)
    assert stack.client.get(f"/jobs/{job_id}/labels").status_code == 409
    job_dir = stack.store.job_dir(job_id)
    assert not (job_dir / "output").exists() and not (job_dir / "labels.jsonl").exists()


def test_a_shard_whose_worker_is_killed_runs_again_and_counts_once(labelled_stack: JobStack,
                                                                  sentiment_rows: list[dict[str, Any]]) -> None:
    stack = labelled_stack
    env = {"SSA_VISIBILITY_TIMEOUT_S": "6"}
    first = stack.worker("first", **env)
    rows = (sentiment_rows * 2)[:400]
    job_id = submit_label_ok(stack, rows, {"shard_rows": 200})
    stack.wait_stage(job_id, lambda job: 0 < job["progress"] < 0.4, timeout=120,
                     what="the first shard to be part way")
    first.kill()
    stack.worker("second", **env)
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=240)
    assert job["status"] == "succeeded", job["error"]
    started = [(e["shard"], e["attempt"], e["worker"].split("@")[0]) for e in events(job, "shard-started")]
    assert started[0] == (0, 1, "first")
    assert sorted(started[1:]) == [(0, 2, "second"), (1, 1, "second")]
    assert sorted(e["shard"] for e in events(job, "shard-done")) == [0, 1]
    assert job["progress"] == 1.0
    check_records(records(stack, job_id), rows)


def test_a_shard_that_cannot_run_fails_the_job_naming_its_rows(labelled_stack: JobStack,
                                                              sentiment_rows: list[dict[str, Any]]) -> None:
    import shutil

    stack = labelled_stack
    job_id = submit_label_ok(stack, sentiment_rows[:30], {"shard_rows": 20})
    shutil.rmtree(stack.store.model_dir(MODEL))  # the model goes after the job was accepted
    stack.worker("only")
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=120)
    assert job["status"] == "failed"
    assert job["error"].startswith("shard 0 (rows 1-20): the model is gone") or \
        job["error"].startswith("shard 1 (rows 21-30): the model is gone"), job["error"]
    assert "/" not in job["error"]  # no absolute path
    assert stack.client.get(f"/jobs/{job_id}/labels").status_code == 409
    assert not (stack.store.job_dir(job_id) / "output").exists()


def test_a_merge_delivered_again_while_the_first_runs_waits_and_the_job_succeeds_once(
        labelled_stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    """The chord's merge leases like one more shard: a second delivery while a copy holds it is deferred (before, it
    ran beside the first, both writing the output and finishing the job); once the holder lets go, the merge runs
    and a late copy finds the job done. The steps run in this process (LabelRunner, no Celery) on the stack's Redis
    and store, so that the second delivery arrives exactly while the first holds the merge."""
    import time
    import uuid

    from worker.label_runner import LabelRunner
    from worker.settings import WorkerSettings

    stack = labelled_stack
    job_id = submit_label_ok(stack, sentiment_rows[:12], {"shard_rows": 6, "probes_per_row": 2})
    runner = LabelRunner(WorkerSettings(home=stack.home, redis_url=stack.redis.url, lease_ttl_s=30),
                         stack.jobs, stack.store, worker="in-test")
    planned = runner.plan(job_id)
    assert planned.action == "dispatch" and len(planned.shards) == 2
    for shard in planned.shards:
        assert runner.run_shard(job_id, shard).status == "succeeded"
    plan = runner.shards.plan(job_id)
    assert plan is not None
    first = f"first-copy:{uuid.uuid4().hex[:8]}"  # a first copy of the merge, running (it holds the merge's lease)
    held = runner.shards.join(job_id, len(plan.shards), job_token=plan.token, token=first, ttl_s=30, max_attempts=3,
                              now=time.time())
    assert held.outcome == "claimed"
    second = runner.merge(job_id)
    assert (second.action, second.status) == ("defer", "another copy is merging")
    assert stack.job(job_id)["status"] == "running" and not (stack.store.job_dir(job_id) / "labels.jsonl").exists()
    runner.shards.release(job_id, len(plan.shards), first)
    assert runner.merge(job_id).status == "succeeded"
    assert runner.merge(job_id).status == "succeeded"  # a late copy: the job is done, nothing runs again
    job = stack.job(job_id)
    assert job["status"] == "succeeded" and len(events(job, "succeeded")) == 1
    assert [r["index"] for r in records(stack, job_id)] == list(range(12))
