"""A training job's probing step fanned out over worker processes, through the shard machinery of label jobs
(jobs.shards: plan, per-shard lease, attempts, done-set), when the training set has more rows than
SSA_TRAIN_PROBE_FANOUT_ROWS.

What is fanned out: only the model's forward passes (`ProbeForward.outputs`). The training process still draws
every mask with the iteration's seeded generator and applies the labelling rule, so the weak labels are exactly those
of in-process probing on the same model; a shard returns the rows `run_sequences` gives for its range, merged in row
order. Probing's rules need these passes one after another (the `keep` rule redraws masks for the rows whose copy
was dropped), so each pass is one call: sequences file, plan, shard messages, wait, merge.

How the training task waits (it runs inside a Celery task, where `result.get()` on sub-tasks is forbidden because a
pool whose processes all wait on sub-tasks deadlocks): it never waits on Celery results. It sends the shards as
`ssa.probe-shard` tasks, then runs any shard no other worker has claimed yet itself, taking them from the end while
the queue hands them out from the front, and waits on the Redis done-set for shards that other workers hold. With no
free worker it so probes alone (as in-process, only slower by the files); with free workers the pass is split among
them. A shard whose worker dies loses its lease after SSA_LEASE_TTL_S and the training process runs it again
(bounded by SSA_MAX_ATTEMPTS); a shard message of an earlier call finds no plan in its scope and is dropped.

Workers load the probe model once per process and iteration (ssa_core.train.probe_shards caches it by the mtime of its
probe.json), not once per shard; the training process writes it to the job folder in the shared artifact store."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from jobs.label_shards import ShardRange, shard_ranges
from jobs.probe_shard_messages import (
    PROBE_DIR,
    PROBE_MODEL_DIR,
    SEQUENCES_FILE,
    ProbeShardMessage,
    call_dir,
    output_file,
)
from jobs.shards import PROBE_TTL_S, ShardStore
from jobs.store import JobStore
from ssa_core.model.ssa_model import SSAModel
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.train.probe_shards import probe_model_loads, read_outputs, run_shard, save_probe_model, write_sequences
from ssa_core.train.probing import Sequences, Take
from ssa_core.train.trainer import TrainingCancelled
from worker.lease import Heartbeat

log = logging.getLogger("ssa.worker")
POLL_S = 0.05
ShardOutcome = Literal["ran", "leased", "done", "cancelled", "exhausted", "gone"]


class ProbeShardFailed(RuntimeError):
    """A probe shard ran out of attempts."""


def run_probe_shard(jobs: JobStore, store: ArtifactStore, message: ProbeShardMessage, *, worker: str, ttl_s: float,
                    heartbeat_s: float, max_attempts: int) -> ShardOutcome:
    """One run of a probe shard, by a worker's task or by the training process itself: claim it (unless done, held
    by a live copy, or its call is over), run it, mark it done."""
    shards = ShardStore(jobs, scope=message.scope, ttl_s=PROBE_TTL_S)
    plan = shards.plan(message.job_id)
    if plan is None:
        return "gone"  # an earlier call's message, or the job moved on
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    shard = message.shard
    join = shards.join(message.job_id, shard.shard, job_token=plan.token, token=token, ttl_s=ttl_s,
                       max_attempts=max_attempts, now=time.time())
    if join.outcome == "leased":
        return "leased"
    if join.outcome == "cancelled":
        return "cancelled"
    if join.outcome == "exhausted":
        return "exhausted"
    if join.outcome != "claimed":
        return "done" if join.outcome == "done" else "gone"
    folder = store.job_dir(message.job_id)
    work = folder / call_dir(message.call)
    loads = probe_model_loads()
    try:
        with Heartbeat.for_shard(shards, message.job_id, shard.shard, plan.token, token, ttl_s, heartbeat_s,
                                 f"job {message.job_id} probe {message.call} shard {shard.shard}"):
            run_shard(folder / PROBE_DIR / PROBE_MODEL_DIR, work / SEQUENCES_FILE, shard.start, shard.end,
                      message.take, work / output_file(shard.shard))
    finally:
        shards.release(message.job_id, shard.shard, token)
    if probe_model_loads() != loads:
        log.info("probe model: loaded the model of job %s in process %d", message.job_id, os.getpid())
    shards.finish_shard(message.job_id, shard.shard, shard.rows)
    return "ran"


class FanoutForward:
    """`ProbeForward` of a training job: each forward pass of probing as shards of at most `shard_rows` sequences.

    `send` queues one shard message (None: the training process runs every shard itself); `should_stop` is the
    job's cancel/lease check (the pass stops with TrainingCancelled)."""

    def __init__(self, jobs: JobStore, store: ArtifactStore, job_id: str, job_token: str, *, shard_rows: int,
                 worker: str, ttl_s: float, heartbeat_s: float, max_attempts: int,
                 send: Callable[[ProbeShardMessage], None] | None, should_stop: Callable[[], bool],
                 joblog: logging.Logger | None = None, steal_after_s: float = 0.0) -> None:
        self.jobs, self.store, self.job_id, self.job_token = jobs, store, job_id, job_token
        self.shard_rows, self.worker, self.send, self.should_stop = shard_rows, worker, send, should_stop
        self.ttl_s, self.heartbeat_s, self.max_attempts = ttl_s, heartbeat_s, max_attempts
        self.joblog = joblog or log
        self.steal_after_s = steal_after_s  # how long a pass leaves its shards to the workers alone (tests)
        self.calls = 0
        self.shards_sent = 0
        self.shards_run_here = 0

    @property
    def folder(self) -> Path:
        return self.store.job_dir(self.job_id) / PROBE_DIR

    def start(self, model: SSAModel, iteration: int, pad_id: int, max_tokens: int) -> None:
        """Write the model of this iteration's probing where the workers load it."""
        save_probe_model(model, self.folder / PROBE_MODEL_DIR, pad_id, max_tokens)
        self.joblog.info("probing iteration %d fanned out in shards of %d sequences", iteration, self.shard_rows)

    def outputs(self, sequences: Sequences, take: Take) -> np.ndarray:
        call = uuid.uuid4().hex[:12]
        work = self.store.job_dir(self.job_id) / call_dir(call)
        work.mkdir(parents=True, exist_ok=True)
        shards = ShardStore(self.jobs, scope=f"probe-{call}:", ttl_s=PROBE_TTL_S)
        try:
            write_sequences(work / SEQUENCES_FILE, sequences)
            ranges = shard_ranges(len(sequences.ids), self.shard_rows)
            shards.save_plan(self.job_id, self.job_token, ranges)
            messages = [ProbeShardMessage(job_id=self.job_id, call=call, take=take, shard=r) for r in ranges]
            if self.send is not None:
                try:
                    for message in messages:
                        self.send(message)
                        self.shards_sent += 1
                except Exception as exc:  # the broker is away: the shards not sent run here
                    self.joblog.warning("probe shards not queued (%s: %s); the training process runs them",
                                        type(exc).__name__, exc)
            shards.mark_dispatched(self.job_id)
            self._until_done(shards, messages)
            self.calls += 1
            return read_outputs([work / output_file(r.shard) for r in ranges])
        finally:
            shards.drop(self.job_id)
            shutil.rmtree(work, ignore_errors=True)

    def _until_done(self, shards: ShardStore, messages: list[ProbeShardMessage]) -> None:
        """Run the shards nobody holds (last first), wait for the others."""
        steal_from = time.monotonic() + (self.steal_after_s if self.shards_sent else 0.0)
        while True:
            done = shards.done(self.job_id)
            if len(done) == len(messages):
                return
            if self.should_stop():
                raise TrainingCancelled("stopped while probing")
            ran = False
            for message in reversed(messages if time.monotonic() >= steal_from else []):
                if message.shard.shard in done:
                    continue
                outcome = self._run(message)
                if outcome == "ran":
                    self.shards_run_here += 1
                    ran = True
                    break  # look at the done-set and the stop signal again
                if outcome == "exhausted":
                    raise ProbeShardFailed(f"probe {_describe(message.shard)} failed {self.max_attempts} times")
                if outcome == "cancelled":
                    raise TrainingCancelled("cancelled while probing")
            if not ran:
                time.sleep(POLL_S)

    def _run(self, message: ProbeShardMessage) -> ShardOutcome:
        return run_probe_shard(self.jobs, self.store, message, worker=self.worker, ttl_s=self.ttl_s,
                               heartbeat_s=self.heartbeat_s, max_attempts=self.max_attempts)


def _describe(shard: ShardRange) -> str:
    return f"shard {shard.shard} (sequences {shard.start + 1}-{shard.end})"
