"""POST /jobs/ssa-train: everything is validated before a job is queued (no worker runs in these tests)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.worker.procs import RedisServer, jsonl, queue_length
from tests.worker.stack import QUICK, JobStack


def nothing_queued(stack: JobStack) -> None:
    assert queue_length(stack.redis.client()) == 0
    assert stack.client.get("/jobs").json()["total"] == 0
    assert list(stack.store.jobs_root.iterdir()) == []


def test_accepted_job_is_queued_with_its_files_and_recorded_split(stack: JobStack,
                                                                  sentiment_rows: list[dict[str, Any]]) -> None:
    response = stack.submit(sentiment_rows[:50], {**QUICK, "seed": 7, "dev_fraction": 0.2})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status_url"] == f"/jobs/{body['job_id']}" == response.headers["location"]
    assert body["status"] == "queued" and body["created"] is True
    job = stack.job(body["job_id"])
    assert (job["status"], job["attempts"], job["model_id"]) == ("queued", 0, body["model_id"])
    assert job["config"]["seed"] == 7 and job["config"]["base_model"] == "tiny"
    split = job["data"]["split"]
    assert split["from"] == "train" and split["seed"] == 7 and len(split["dev_rows"]) == job["data"]["dev_examples"]
    assert job["data"]["train_examples"] + job["data"]["dev_examples"] == 50
    assert set(split["dev_rows"]) <= set(range(1, 51))
    folder = stack.store.job_dir(body["job_id"])
    assert (folder / "train.jsonl").read_bytes() == jsonl(sentiment_rows[:50])
    assert json.loads((folder / "config.json").read_text())["data"]["split"] == split
    assert queue_length(stack.redis.client()) == 1
    listed = stack.client.get("/jobs").json()
    assert listed["total"] == 1 and listed["jobs"][0]["data"]["split"]["dev_rows"] == len(split["dev_rows"])


def test_csv_train_with_a_dev_file(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    csv = "sentence,polarity\n" + "".join(f'"{r["text"].replace(chr(34), "")}",{r["label"]}\n'
                                          for r in sentiment_rows[:30])
    dev_rows = [{"sentence": r["text"], "polarity": r["label"]} for r in sentiment_rows[30:40]]
    config = {**QUICK, "text_column": "sentence", "label_column": "polarity"}
    response = stack.submit(csv.encode(), config, dev=dev_rows, train_name="reviews.csv")
    assert response.status_code == 202, response.text
    job = stack.job(response.json()["job_id"])
    assert job["data"]["files"] == {"train": "train.csv", "dev": "dev.jsonl"}
    assert job["data"]["split"] is None and job["data"]["dev_examples"] == 10
    assert job["data"]["columns"] == {"text": "sentence", "text_pair": None, "label": "polarity"}


def test_bad_dataset_gets_422_with_row_numbers_and_never_reaches_the_queue(
        stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    rows = [dict(r) for r in sentiment_rows[:20]]
    rows[3]["text"] = "   "
    del rows[11]["label"]
    response = stack.submit(rows)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_dataset"
    assert error["message"].startswith("train: 2 problems in the dataset: row 4, column 'text'")
    assert [(p["field"], p["row"], p["column"]) for p in error["detail"]] == [("train", 4, "text"),
                                                                              ("train", 12, "label")]
    nothing_queued(stack)


def test_dev_label_unknown_to_train_is_named_with_its_row(stack: JobStack,
                                                           sentiment_rows: list[dict[str, Any]]) -> None:
    dev = [dict(r) for r in sentiment_rows[20:30]]
    dev[5]["label"] = "neutral"
    response = stack.submit(sentiment_rows[:20], dev=dev)
    assert response.status_code == 422
    problem = response.json()["error"]["detail"][0]
    assert (problem["field"], problem["row"]) == ("dev", 6) and "'neutral' does not occur in train" in \
        problem["message"]
    nothing_queued(stack)


@pytest.mark.parametrize(("config", "field", "words"), [
    ({"iterations": 0}, "config.iterations", "greater than or equal to 1"),
    ({"lambda_tok": 1.5}, "config.lambda_tok", "less than 1"),
    ({"method": "magic"}, "config.method", "'baseline', 'co', 'layer' or 'hybrid'"),
    ({"epochs": 3}, "config.epochs", "Extra inputs are not permitted"),
    ({"base_model": "bert-large"}, "config.base_model", "'bert-large' is not allowed (allowed: minilm, tiny, broken)"),
    ({"metric": "pearson"}, "config.metric", "does not fit a classification task"),
    ({"model_id": "Bad/Id"}, "config.model_id", "is invalid"),
    ({"deploy": "sometimes"}, "config.deploy", "'never', 'if_better' or 'always'"),
    ({"iterations": "2"}, "config.iterations", "Input should be a valid integer"),
    ({"iterations": True}, "config.iterations", "Input should be a valid integer"),
    ({"learning_rate": "0.001"}, "config.learning_rate", "Input should be a valid number"),
    ({"max_length": 64.0}, "config.max_length", "Input should be a valid integer"),
    ({"model_id": 7}, "config.model_id", "Input should be a valid string"),
    ({"max_length": 600}, "config.max_length", "must be at most 512: the base model 'tiny' has 512 positions"),
])
def test_bad_config_gets_422_naming_the_field(stack: JobStack, sentiment_rows: list[dict[str, Any]],
                                              config: dict[str, Any], field: str, words: str) -> None:
    response = stack.submit(sentiment_rows[:20], {**QUICK, **config})
    assert response.status_code == 422, response.text
    detail = response.json()["error"]["detail"][0]
    assert detail["field"] == field and words in detail["message"]
    nothing_queued(stack)


def test_config_that_is_not_json_and_a_file_of_unknown_type(stack: JobStack,
                                                            sentiment_rows: list[dict[str, Any]]) -> None:
    files = {"train": ("train.jsonl", jsonl(sentiment_rows[:20]))}
    response = stack.client.post("/jobs/ssa-train", files=files, data={"config": "{iterations: 2}"})
    assert response.status_code == 422 and response.json()["error"]["detail"][0]["field"] == "config"
    response = stack.submit(jsonl(sentiment_rows[:20]), train_name="train.xlsx")
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("train: the file name must end in .jsonl")
    nothing_queued(stack)


def test_upload_over_the_limit_gets_413(tmp_path: Path, redis_server: RedisServer, base_models: str,
                                        sentiment_rows: list[dict[str, Any]]) -> None:
    small = JobStack(tmp_path, redis_server, base_models, max_upload_bytes=4096)
    try:
        response = small.submit(sentiment_rows[:100])
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "payload_too_large"
        nothing_queued(small)
    finally:
        small.close()


def test_writes_need_the_api_key(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    files = {"train": ("train.jsonl", jsonl(sentiment_rows[:20]))}
    response = stack.client.post("/jobs/ssa-train", files=files, headers={"X-API-Key": "wrong"})
    assert response.status_code == 401
    assert stack.client.post("/jobs/0123/cancel", headers={"X-API-Key": ""}).status_code == 401
    nothing_queued(stack)


def test_idempotency_key_returns_the_same_job(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    first = stack.submit(sentiment_rows[:20], key="upload-42")
    again = stack.submit(sentiment_rows[:20], key="upload-42")
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["created"] is False
    assert queue_length(stack.redis.client()) == 1
    other = stack.submit(sentiment_rows[:21], key="upload-42")
    assert other.status_code == 409 and other.json()["error"]["type"] == "idempotency_conflict"
    bad = stack.submit(sentiment_rows[:20], key="has space")
    assert bad.status_code == 422
    assert stack.client.get("/jobs").json()["total"] == 1


def test_model_id_already_taken_is_refused(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    taken = stack.store.models_root / "taken"
    taken.mkdir()
    (taken / "ssa.json").write_text("{}")
    response = stack.submit(sentiment_rows[:20], {**QUICK, "model_id": "taken"})
    assert response.status_code == 409 and response.json()["error"]["type"] == "model_exists"


def test_a_float_setting_takes_an_integer(stack: JobStack, sentiment_rows: list[dict[str, Any]]) -> None:
    response = stack.submit(sentiment_rows[:20], {**QUICK, "learning_rate": 1, "max_length": 512})
    assert response.status_code == 202, response.text
    assert stack.job(response.json()["job_id"])["config"]["learning_rate"] == 1.0


@pytest.mark.parametrize(("name", "data", "column", "row"), [
    ("train.csv", b"text,label,label\ngood film,pos,pos\nbad film,neg,neg\n", "label", None),
    ("train.tsv", b"text\ttext\tlabel\ngood film\tx\tpos\nbad film\ty\tneg\n", "text", None),
    ("train.jsonl", b'{"text": "good film", "label": "pos"}\n{"text": "bad", "label": "neg", "label": "pos"}\n',
     "label", 2),
])
def test_a_column_named_twice_is_refused_naming_it(stack: JobStack, name: str, data: bytes, column: str,
                                                   row: int | None) -> None:
    response = stack.submit(data, train_name=name)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_dataset"
    assert [(p["field"], p["row"], p["column"]) for p in error["detail"]][:1] == [("train", row, column)]
    assert "more than once" in error["detail"][0]["message"] and repr(column) in error["message"]
    nothing_queued(stack)


def test_a_model_id_is_reserved_at_submission_until_its_job_ends(stack: JobStack,
                                                                sentiment_rows: list[dict[str, Any]]) -> None:
    config = {**QUICK, "model_id": "mine"}
    first = stack.submit(sentiment_rows[:20], config)
    assert first.status_code == 202, first.text
    job_id = first.json()["job_id"]
    second = stack.submit(sentiment_rows[20:40], config)
    assert second.status_code == 409, second.text
    error = second.json()["error"]
    assert error["type"] == "model_exists" and error["detail"][0] == {
        "field": "config.model_id", "message": f"reserved by job {job_id}, which has not ended", "job_id": job_id}
    assert stack.client.get("/jobs").json()["total"] == 1 and queue_length(stack.redis.client()) == 1
    assert stack.client.post(f"/jobs/{job_id}/cancel").status_code in (200, 202)
    third = stack.submit(sentiment_rows[20:40], config)
    assert third.status_code == 202, third.text
    assert stack.jobs.fail_if_active(third.json()["job_id"], "the test fails it")
    assert stack.submit(sentiment_rows[40:60], config).status_code == 202


def test_parallel_submissions_with_one_model_id_queue_one_job(tmp_path: Path, redis_server: RedisServer,
                                                               base_models: str,
                                                               sentiment_rows: list[dict[str, Any]]) -> None:
    stack = JobStack(tmp_path, redis_server, base_models, max_parallel_uploads=4)  # the race, not the upload cap
    try:
        config = {**QUICK, "model_id": "raced"}
        with ThreadPoolExecutor(max_workers=4) as pool:
            codes = sorted(pool.map(lambda n: stack.submit(sentiment_rows[n * 20:(n + 1) * 20],
                                                           config).status_code, range(4)))
        assert codes == [202, 409, 409, 409]
        assert stack.client.get("/jobs").json()["total"] == 1 and queue_length(stack.redis.client()) == 1
    finally:
        stack.close()


def test_a_dataset_sent_as_a_text_field_is_named_as_not_a_file(stack: JobStack,
                                                                 sentiment_rows: list[dict[str, Any]]) -> None:
    files = {"train": ("train.jsonl", jsonl(sentiment_rows[:20]))}
    response = stack.client.post("/jobs/ssa-train", files=files, data={"dev": "some text", "config": "{}"})
    assert response.status_code == 422
    detail = response.json()["error"]["detail"][0]
    assert detail["field"] == "dev" and detail["message"] == "must be a file (a multipart part with a file name), " \
        "not a text field"
    assert "UploadFile" not in response.text
    nothing_queued(stack)
