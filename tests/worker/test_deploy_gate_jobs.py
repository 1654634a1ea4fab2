"""The deploy gate inside real jobs: real `ssa worker` processes train the 2-layer encoder, check the exported model
through the ONNX runtime before publishing it, and run the gate after; the job record, active.json, GET /models
and /readyz agree afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.jobs.test_deploy_gate import publish_variant
from tests.worker.procs import wait_for
from tests.worker.stack import QUICK, JobStack


def served(stack: JobStack) -> str | None:
    body = stack.client.get("/readyz").json()
    return body["model_id"] if body["ready"] else None


def test_a_model_that_cannot_serve_is_not_published_and_its_job_fails(stack: JobStack,
                                                                      sentiment_rows: list[dict[str, Any]]) -> None:
    job_id = stack.submit_ok(sentiment_rows[:48], {**QUICK, "deploy": "always", "model_id": "cannot-serve"})
    # A job queued before submissions were checked against the base model: it asks for more positions than the
    # encoder has (512). Training on short texts never reaches them; serving a max-length input does.
    key = stack.jobs.job_key(job_id)
    config = json.loads(stack.jobs.redis.hget(key, "config"))
    stack.jobs.redis.hset(key, "config", json.dumps({**config, "max_length": 600}))
    stack.worker("w1")
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=600)
    assert job["status"] == "failed" and job["attempts"] == 1, job  # permanent: not retried
    assert job["error"].startswith("the trained model cannot serve, so it was not published: it fails to predict: ")
    assert str(stack.home) not in job["error"] and "Traceback" not in job["error"] and "\n" not in job["error"]
    assert job["deployed"] is None and job["result"] is None
    assert not stack.store.has_model("cannot-serve") and list(stack.store.staging_root.iterdir()) == []
    assert stack.store.active_model_id() is None and stack.client.get("/models").json()["models"] == []
    assert stack.client.get("/readyz").status_code == 503
    log = stack.client.get(f"/jobs/{job_id}/log").text
    assert "the exported model cannot serve: it fails to predict" in log


def test_if_better_goes_through_every_check_and_all_sources_agree(stack: JobStack, tiny_model_dir: Path,
                                                                 sentiment_rows: list[dict[str, Any]]) -> None:
    publish_variant(stack.store, tiny_model_dir, "spam-filter", labels=["ham", "spam"])
    stack.store.set_active_model("spam-filter")
    wait_for(lambda: served(stack) == "spam-filter", 30, "the API to serve spam-filter")
    stack.worker("w1", SSA_DEPLOY_MAX_ATTENTION_ENTROPY="1.0")  # a 1-iteration model may explain little
    config = {**QUICK, "deploy": "if_better"}
    refused_id = stack.submit_ok(sentiment_rows[:48], {**config, "model_id": "sentiment-1"})
    refused = stack.wait_status(refused_id, "succeeded", "failed", timeout=600)
    assert refused["status"] == "succeeded" and refused["deployed"] is False, refused
    gate = refused["result"]["deploy_gate"]
    assert [(c["name"], c["outcome"]) for c in gate["checks"]] == [
        ("labels", "failed"), ("loads", "skipped"), ("explanations", "skipped"), ("score", "skipped")]
    assert gate["reason"] == refused["deploy_note"] and gate["active_before"] == "spam-filter"
    assert refused["deploy_note"].startswith("not deployed: its labels ['negative', 'positive'] differ from the "
                                             "active model 'spam-filter'")
    assert stack.store.active_model_id() == "spam-filter" and stack.store.has_model("sentiment-1")

    # The same question as the active model now: the two are scored on the new job's dev set.
    publish_variant(stack.store, tiny_model_dir, "sentiment-0")
    stack.store.set_active_model("sentiment-0")
    compared_id = stack.submit_ok(sentiment_rows[48:96], {**config, "model_id": "sentiment-2"})
    compared = stack.wait_status(compared_id, "succeeded", "failed", timeout=600)
    assert compared["status"] == "succeeded", compared
    gate = compared["result"]["deploy_gate"]
    assert [(c["name"], c["outcome"]) for c in gate["checks"]][:3] == [
        ("labels", "passed"), ("loads", "passed"), ("explanations", "passed")]
    scores = gate["scores"]
    assert scores["metric"] == "accuracy" and scores["examples"] == compared["data"]["dev_examples"]
    assert compared["deployed"] is (scores["new"] > scores["active"])  # a tie keeps the active model
    expected = "sentiment-2" if compared["deployed"] else "sentiment-0"
    assert stack.store.active_model_id() == expected
    assert stack.client.get("/models").json()["active"] == expected
    wait_for(lambda: served(stack) == expected, 30, f"the API to serve {expected}")
    log = stack.client.get(f"/jobs/{compared_id}/log").text
    assert "deploy gate: labels passed" in log and f"deploy gate: {compared['deploy_note']}" in log


def test_a_job_adds_the_int8_variant_only_when_it_agrees_with_fp32(stack: JobStack,
                                                                   sentiment_rows: list[dict[str, Any]]) -> None:
    stack.worker("w1")
    lenient = stack.submit_ok(sentiment_rows[:48], {**QUICK, "quantize": "int8", "int8_min_agreement": 0.01,
                                                    "model_id": "with-int8"})
    strict = stack.submit_ok(sentiment_rows[:48], {**QUICK, "quantize": "int8", "int8_min_agreement": 1.0,
                                                   "model_id": "maybe-int8"})
    written = stack.wait_status(lenient, "succeeded", "failed", timeout=600)
    assert written["status"] == "succeeded", written
    int8 = written["result"]["int8"]
    assert int8["written"] is True and int8["reason"] is None
    assert int8["checked_inputs"] == written["data"]["dev_examples"]
    variants = stack.client.get("/models/with-int8").json()["variants"]
    assert [v["name"] for v in variants] == ["fp32", "int8"] and variants[1]["agreement"] == int8["agreement"]
    assert "int8 variant written: it predicted fp32's label on" in stack.client.get(f"/jobs/{lenient}/log").text

    second = stack.wait_status(strict, "succeeded", "failed", timeout=600)
    assert second["status"] == "succeeded", second  # a refused variant never fails the job
    outcome = second["result"]["int8"]
    names = [v["name"] for v in stack.client.get("/models/maybe-int8").json()["variants"]]
    assert outcome["written"] is (outcome["agreement"] == 1.0)
    assert names == (["fp32", "int8"] if outcome["written"] else ["fp32"])
    if not outcome["written"]:
        assert outcome["reason"].startswith("int8 predicted what fp32 did on ") and "model.int8.onnx not written" in \
            outcome["reason"]
