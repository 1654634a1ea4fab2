"""A training job's probing fanned out over real `ssa worker` processes (real Redis, the 2-layer model): the weak
labels equal in-process probing on the same model for the keep, contrast, flip and graded rules, workers load the
probe model once per process, and a training job above SSA_TRAIN_PROBE_FANOUT_ROWS probes through shards."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from jobs.probe_shard_messages import PROBE_DIR, ProbeShardMessage
from jobs.producer import PROBE_SHARD_TASK_NAME, QUEUE, producer_app
from ssa_core.data.datasets import Example
from ssa_core.export.folder import load_trained
from ssa_core.model.tokenize import encode_examples
from ssa_core.train.probing import Prober, WeakExample
from tests.worker.stack import QUICK, JobStack, events
from worker.probe_fanout import FanoutForward

pytestmark = pytest.mark.timeout(300)
CPU = torch.device("cpu")


def running_job(stack: JobStack) -> tuple[str, str]:
    """A job record as a running training job leaves it (what the shard store reads: status and lease)."""
    job_id, token = f"job-{uuid.uuid4().hex[:8]}", "trainer:1"
    client = stack.redis.client()
    client.hset(stack.jobs.job_key(job_id), mapping={"status": "running", "kind": "train"})
    client.set(stack.jobs.lease_key(job_id), token, px=60_000)
    return job_id, token


def fanout(stack: JobStack, job_id: str, token: str) -> FanoutForward:
    app = producer_app(stack.redis.url)

    def send(message: ProbeShardMessage) -> None:
        app.send_task(PROBE_SHARD_TASK_NAME, args=[message.model_dump(mode="json")], queue=QUEUE)

    # each pass leaves its shards to the workers for up to 5 s (so that on a loaded machine they surely take some)
    return FanoutForward(stack.jobs, stack.store, job_id, token, shard_rows=7, worker="trainer", ttl_s=3,
                         heartbeat_s=1, max_attempts=3, send=send, should_stop=lambda: False, steal_after_s=5)


def as_tuples(weak: list[WeakExample]) -> list[tuple[Any, ...]]:
    return [(tuple(w.encoded.input_ids), tuple(w.token_labels), tuple(w.masked)) for w in weak]


def test_fanned_out_probing_equals_in_process_probing(stack: JobStack, tiny_model_dir: Path,
                                                      sentiment_rows: list[dict[str, Any]]) -> None:
    workers = stack.start_workers("p1", "p2")
    model, tokenizer, meta = load_trained(tiny_model_dir)
    examples = [Example(example_id=i, row=i + 1, text=row["text"], text_pair=None, label=str(row["label"]))
                for i, row in enumerate(sentiment_rows[:40])]
    encoded = encode_examples(tokenizer, examples, int(meta["max_length"]))
    labels = list(model.config.labels)
    mask_id, pad_id = int(tokenizer.mask_token_id), int(tokenizer.pad_token_id or 0)
    local = Prober(model, mask_id, pad_id, CPU, max_tokens=2048)
    job_id, token = running_job(stack)
    forward = fanout(stack, job_id, token)
    remote = Prober(model, mask_id, pad_id, CPU, max_tokens=2048, forward=forward)
    remote.start(1)
    for mode in ("keep", "contrast", "flip", "graded"):
        expected, expected_stats = local.probe(mode, encoded, labels, 30, np.random.default_rng([0, 1]), 0.3, 3)
        found, found_stats = remote.probe(mode, encoded, labels, 30, np.random.default_rng([0, 1]), 0.3, 3)
        assert expected, mode
        if mode == "graded":  # graded targets are float drops: equal up to float32 batching noise
            assert [w.masked for w in found] == [w.masked for w in expected]
            for a, b in zip(found, expected, strict=True):
                assert np.allclose(a.token_labels, b.token_labels, atol=1e-4), mode
        else:
            assert as_tuples(found) == as_tuples(expected), mode
        assert found_stats == expected_stats, mode
    assert forward.calls >= 8 and forward.shards_sent > forward.shards_run_here
    ran_by_workers = sum(w.log().count(f"job {job_id} probe ") for w in workers)
    assert ran_by_workers > 0, stack.logs()
    # one probe model, loaded once per worker process that ran shards (not once per shard)
    loads = [w.log().count(f"probe model: loaded the model of job {job_id}") for w in workers]
    assert all(n <= 1 for n in loads) and sum(loads) >= 1, loads
    assert not list((stack.store.job_dir(job_id) / PROBE_DIR).glob("call-*"))  # each call's files are gone
    assert not stack.redis.client().keys(f"ssa:job:{job_id}:probe-*")


def test_training_job_above_the_setting_probes_through_shards(stack: JobStack,
                                                              sentiment_rows: list[dict[str, Any]]) -> None:
    env = {"SSA_TRAIN_PROBE_FANOUT_ROWS": "20", "SSA_TRAIN_PROBE_SHARD_ROWS": "16"}
    stack.start_workers("t1", "t2", **env)
    job_id = stack.submit_ok(sentiment_rows[:48], {**QUICK, "iterations": 2})
    job = stack.wait_status(job_id, "succeeded", "failed", timeout=240)
    assert job["status"] == "succeeded", job
    assert events(job, "succeeded")
    text = "".join(worker.log() for worker in stack.workers)  # the job's log reaches its worker's log too
    assert "probing runs as shards over the workers" in text, stack.logs()
    assert f"job {job_id} probe " in text  # a worker task (not the trainer's own loop) ran probe shards
    assert not (stack.store.job_dir(job_id) / PROBE_DIR).exists()


def test_without_free_workers_or_broker_the_training_process_runs_every_shard(stack: JobStack, tiny_model_dir: Path,
                                                                              sentiment_rows: list[dict[str, Any]]
                                                                              ) -> None:
    model, tokenizer, meta = load_trained(tiny_model_dir)
    examples = [Example(example_id=i, row=i + 1, text=row["text"], text_pair=None, label=str(row["label"]))
                for i, row in enumerate(sentiment_rows[:20])]
    encoded = encode_examples(tokenizer, examples, int(meta["max_length"]))
    labels = list(model.config.labels)
    mask_id, pad_id = int(tokenizer.mask_token_id), int(tokenizer.pad_token_id or 0)
    expected, _ = Prober(model, mask_id, pad_id, CPU).keep(encoded, labels, 15, np.random.default_rng(3), 0.3, 2)
    job_id, token = running_job(stack)

    def broker_away(message: ProbeShardMessage) -> None:
        raise ConnectionError("broker unreachable")

    forward = FanoutForward(stack.jobs, stack.store, job_id, token, shard_rows=6, worker="trainer", ttl_s=3,
                            heartbeat_s=1, max_attempts=3, send=broker_away, should_stop=lambda: False)
    remote = Prober(model, mask_id, pad_id, CPU, forward=forward)
    remote.start(1)
    found, _ = remote.keep(encoded, labels, 15, np.random.default_rng(3), 0.3, 2)
    assert as_tuples(found) == as_tuples(expected)
    assert forward.shards_sent == 0 and forward.shards_run_here >= 4
