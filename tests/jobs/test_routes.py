"""GET /jobs, GET /jobs/{id}, cancel, labels and log, without a worker (the files a worker writes are written here)."""

from __future__ import annotations

import json
from typing import Any

from tests.worker.stack import JobStack


def test_list_pages_newest_first_and_filters_by_status(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    ids = [stack.submit_ok(sentiment_rows[i:i + 20]) for i in range(3)]
    page = stack.client.get("/jobs", params={"limit": 2}).json()
    assert page["total"] == 3 and [job["id"] for job in page["jobs"]] == [ids[2], ids[1]]
    rest = stack.client.get("/jobs", params={"limit": 2, "offset": 2}).json()
    assert [job["id"] for job in rest["jobs"]] == [ids[0]]
    stack.client.post(f"/jobs/{ids[1]}/cancel")
    cancelled = stack.client.get("/jobs", params={"status": "cancelled"}).json()
    assert [job["id"] for job in cancelled["jobs"]] == [ids[1]] and cancelled["total"] == 1
    assert stack.client.get("/jobs", params={"status": "queued"}).json()["total"] == 2
    assert stack.client.get("/jobs", params={"status": "lost"}).status_code == 422
    assert stack.client.get("/jobs", params={"limit": 0}).status_code == 422


def test_unknown_and_invalid_job_ids(stack: JobStack) -> None:
    missing = stack.client.get("/jobs/0123456789abcdef")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert stack.client.get("/jobs/Not..Valid").status_code == 422
    assert stack.client.post("/jobs/0123456789abcdef/cancel").status_code == 404
    assert stack.client.get("/jobs/0123456789abcdef/labels").status_code == 404


def test_cancel_a_queued_job_then_again(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    job_id = stack.submit_ok(sentiment_rows[:20])
    response = stack.client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = stack.client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["detail"] == {"status": "cancelled"}


def test_labels_stream_per_iteration_or_all(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    job_id = stack.submit_ok(sentiment_rows[:20])
    assert stack.client.get(f"/jobs/{job_id}/labels").status_code == 404  # none yet
    labels = stack.store.job_dir(job_id) / "labels"
    labels.mkdir()
    for k in (1, 2):
        lines = [json.dumps({"iteration": k, "example_id": i}) + "\n" for i in range(3)]
        (labels / f"iter{k}.jsonl").write_text("".join(lines))
    everything = stack.client.get(f"/jobs/{job_id}/labels")
    assert everything.status_code == 200 and everything.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line)["iteration"] for line in everything.text.splitlines()] == [1, 1, 1, 2, 2, 2]
    second = stack.client.get(f"/jobs/{job_id}/labels", params={"iteration": 2})
    assert [json.loads(line)["iteration"] for line in second.text.splitlines()] == [2, 2, 2]
    absent = stack.client.get(f"/jobs/{job_id}/labels", params={"iteration": 7})
    assert absent.status_code == 404 and absent.json()["error"]["detail"] == {"available": [1, 2]}


def test_log_is_plain_text(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    job_id = stack.submit_ok(sentiment_rows[:20])
    assert stack.client.get(f"/jobs/{job_id}/log").text == ""
    (stack.store.job_dir(job_id) / "log.txt").write_text("line one\nline two\n")
    response = stack.client.get(f"/jobs/{job_id}/log")
    assert response.headers["content-type"].startswith("text/plain") and response.text == "line one\nline two\n"


def test_redis_down_is_a_503(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    stack.redis.kill()
    response = stack.client.get("/jobs")
    assert response.status_code == 503 and response.json()["error"]["type"] == "job_store_unavailable"
    response = stack.submit(sentiment_rows[:20])
    assert response.status_code == 503
