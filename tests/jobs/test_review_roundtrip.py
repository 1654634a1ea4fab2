"""The review round trip through the service, with real Redis and a real `ssa worker` on the tiny (2-layer) model:
a label job's records as Label Studio tasks and Argilla records (GET /jobs/{id}/labels?format=...), and a training
job whose train file carries reviewed `rationale_spans`: bad spans are refused with their row before anything is
queued; good ones train and are counted in the model's metrics.json and card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.worker.procs import jsonl, queue_length
from tests.worker.stack import QUICK, JobStack

pytestmark = pytest.mark.timeout(300)
MODEL = "tiny-hybrid"


def test_a_label_job_as_label_studio_tasks_and_argilla_records(stack: JobStack, tiny_model_dir: Path,
                                                               sentiment_rows: list[dict[str, Any]]) -> None:
    assert stack.store.import_model(tiny_model_dir, MODEL) == MODEL
    stack.start_workers("one")
    rows = sentiment_rows[:15]
    response = stack.client.post("/jobs/ssa-label", files={"data": ("rows.jsonl", jsonl(rows))},
                                 data={"config": json.dumps({"model_id": MODEL, "probes_per_row": 16})})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    early = stack.client.get(f"/jobs/{job_id}/labels", params={"format": "label-studio"})
    assert early.status_code in (200, 409)  # 409 until the job has succeeded
    assert stack.wait_status(job_id, "succeeded", "failed", timeout=240)["status"] == "succeeded"
    records = [json.loads(line) for line in stack.client.get(f"/jobs/{job_id}/labels").text.splitlines()]

    studio = stack.client.get(f"/jobs/{job_id}/labels", params={"format": "label-studio"})
    assert studio.status_code == 200 and studio.headers["content-type"].startswith("application/json")
    assert f'filename="{job_id}-label-studio.json"' in studio.headers["content-disposition"]
    config = unquote(studio.headers["x-label-studio-config"])
    assert '<Labels name="rationale" toName="text">' in config and '<Choice value="positive"/>' in config
    tasks = studio.json()
    assert [t["data"]["row"] for t in tasks] == [r["row"] for r in records] == list(range(1, 16))
    for task, record in zip(tasks, records, strict=True):
        result = task["predictions"][0]["result"]
        assert {"type": "choices", "value": {"choices": [record["prediction"]]}}.items() <= result[-1].items()
        spans = [r["value"] for r in result if r["type"] == "labels"]
        assert spans and all(s["text"] == record["text"][s["start"]:s["end"]] for s in spans)

    argilla = stack.client.get(f"/jobs/{job_id}/labels", params={"format": "argilla"})
    assert argilla.status_code == 200
    document = argilla.json()
    assert document["settings"]["questions"][1]["labels"] == ["negative", "positive"]
    assert [r["id"] for r in document["records"]] == [f"row-{n}" for n in range(1, 16)]
    assert stack.client.get(f"/jobs/{job_id}/labels", params={"format": "xml"}).status_code == 422


def test_reviewed_rationales_are_validated_then_trained_and_counted(stack: JobStack,
                                                                    sentiment_rows: list[dict[str, Any]]) -> None:
    rows = [dict(r) for r in sentiment_rows[:40]]
    rows[2]["rationale_spans"] = [[5, 2]]
    rows[6]["rationale_spans"] = [[0, 10_000]]
    response = stack.submit(rows)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [(p["field"], p["row"], p["column"]) for p in error["detail"]] == [("train", 3, "rationale_spans"),
                                                                              ("train", 7, "rationale_spans")]
    assert "start < end" in error["message"] and "/" not in error["message"].split("problems")[0]
    assert queue_length(stack.redis.client()) == 0

    for row in rows[:12]:
        row["rationale_spans"] = [[0, min(4, len(row["text"]))]]
    for row in rows[12:]:
        row.pop("rationale_spans", None)
    stack.start_workers("one")
    job_id = stack.submit_ok(rows, {**QUICK, "iterations": 2})
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=240)
    assert job["status"] == "succeeded", job["error"]
    folder = stack.store.model_dir(job["model_id"])
    human = json.loads((folder / "metrics.json").read_text())["human_rationales"]
    assert 0 < human["rows"] <= 12 and human["train_rows"] < 40
    assert f"human rationales: {human['rows']} of {human['train_rows']} training rows" in \
        (folder / "README.md").read_text()


def test_a_label_studio_export_is_a_training_upload(stack: JobStack, tiny_model_dir: Path,
                                                    sentiment_rows: list[dict[str, Any]]) -> None:
    """Export a label job as Label Studio tasks, review spans (annotations), upload the export as the train file:
    bad tasks are refused with their number and field before anything is queued; good ones train and the model's
    metrics and card count the human-rationale rows."""
    assert stack.store.import_model(tiny_model_dir, MODEL) == MODEL
    stack.start_workers("one")
    rows = sentiment_rows[:40]
    response = stack.client.post("/jobs/ssa-label", files={"data": ("rows.jsonl", jsonl(rows))},
                                 data={"config": json.dumps({"model_id": MODEL, "probes_per_row": 4})})
    assert response.status_code == 202, response.text
    label_job = response.json()["job_id"]
    assert stack.wait_status(label_job, "succeeded", "failed", timeout=240)["status"] == "succeeded"
    tasks = stack.client.get(f"/jobs/{label_job}/labels", params={"format": "label-studio"}).json()
    for task in tasks[:12]:  # a reviewer keeps the first suggested span, widened to the first 4 characters
        text = task["data"]["text"]
        task["annotations"] = [{"id": 1, "result": [{"from_name": "rationale", "to_name": "text", "type": "labels",
                                                     "value": {"start": 0, "end": min(4, len(text)),
                                                               "labels": ["rationale"]}}]}]

    bad = json.loads(json.dumps(tasks))
    bad[3]["annotations"][0]["result"][0]["value"]["end"] = 10_000
    del bad[20]["data"]["label"]
    refused = stack.submit(json.dumps(bad).encode(), train_name="review.json")
    assert refused.status_code == 422, refused.text
    detail = refused.json()["error"]["detail"]
    assert [(p["field"], p["row"], p["column"]) for p in detail] == [("train", 4, "annotations.result.value"),
                                                                     ("train", 21, "data.label")]
    assert "ends past the text" in detail[0]["message"]
    assert queue_length(stack.redis.client()) == 0

    job_id = stack.submit_ok(json.dumps(tasks).encode(), {**QUICK, "iterations": 2}, train_name="review.json")
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=240)
    assert job["status"] == "succeeded", job["error"]
    folder = stack.store.model_dir(job["model_id"])
    human = json.loads((folder / "metrics.json").read_text())["human_rationales"]
    assert 0 < human["rows"] <= 12 and human["train_rows"] < 40
    assert f"human rationales: {human['rows']} of {human['train_rows']} training rows" in \
        (folder / "README.md").read_text()
