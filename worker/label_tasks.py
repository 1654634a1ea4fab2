"""The Celery tasks of label jobs: `ssa.label` (plan, then send the shards as a chord), `ssa.label-shard` (one
shard) and `ssa.label-merge` (the chord's callback). Job logic lives in worker.label_runner.

Reliability is the app's (worker.celery_app): acks_late and reject_on_worker_lost, so that a shard whose worker
dies is delivered again; the shard's own lease and done-set (jobs.shards) make a second copy wait or count once."""

from __future__ import annotations

import logging
import os
from typing import Any

import redis
from celery import Task, chord

from jobs.label_shards import LabelShardMessage
from jobs.producer import LABEL_MERGE_TASK_NAME, LABEL_SHARD_TASK_NAME, LABEL_TASK_NAME
from jobs.store import JobStore
from ssa_core.runtime.artifacts import ArtifactStore
from worker.celery_app import app
from worker.label_runner import LabelRunner, StepOutcome
from worker.settings import worker_settings

log = logging.getLogger("ssa.worker")
_runners: dict[int, LabelRunner] = {}
REDIS_RETRY_S = 15


def runner_for(worker: str) -> LabelRunner:
    """This process's label runner (made on first use, after the pool forked it)."""
    pid = os.getpid()
    if pid not in _runners:
        settings = worker_settings()
        _runners[pid] = LabelRunner(settings, JobStore.from_url(settings.redis_url), ArtifactStore(settings.home),
                                    worker=f"{worker}:{pid}")
    return _runners[pid]


def _follow(task: Task, outcome: StepOutcome, what: str) -> dict[str, Any]:
    if outcome.action in ("defer", "retry"):
        raise task.retry(countdown=outcome.delay_s, max_retries=None)
    return {"what": what, "status": outcome.status}


@app.task(name=LABEL_TASK_NAME, bind=True, max_retries=None)
def label(self: Task, job_id: str) -> dict[str, Any]:
    """Plan label job `job_id` and send its shards as a chord (group of shard tasks, merge as the callback)."""
    runner = runner_for(str(self.request.hostname))
    try:
        outcome = runner.plan(job_id)
        if outcome.action == "dispatch":
            header = [label_shard.s(*LabelShardMessage(job_id=job_id, shard=shard).args()) for shard in outcome.shards]
            chord(header)(label_merge.s(job_id))
            runner.dispatched(job_id, len(header))
            return {"what": "plan", "status": "dispatched", "shards": len(header)}
    except redis.RedisError as exc:
        log.warning("label job %s: Redis unreachable (%s); delivering it again later", job_id, exc)
        raise self.retry(countdown=REDIS_RETRY_S, max_retries=None) from exc
    return _follow(self, outcome, "plan")


@app.task(name=LABEL_SHARD_TASK_NAME, bind=True, max_retries=None)
def label_shard(self: Task, job_id: str, shard: dict[str, Any]) -> dict[str, Any]:
    """Label one shard of job `job_id`."""
    message = LabelShardMessage.from_args(job_id, shard)
    try:
        outcome = runner_for(str(self.request.hostname)).run_shard(message.job_id, message.shard)
    except redis.RedisError as exc:
        log.warning("label job %s shard %s: Redis unreachable (%s); later", job_id, message.shard.shard, exc)
        raise self.retry(countdown=REDIS_RETRY_S, max_retries=None) from exc
    return _follow(self, outcome, f"shard {message.shard.shard}")


@app.task(name=LABEL_MERGE_TASK_NAME, bind=True, max_retries=None)
def label_merge(self: Task, results: list[Any], job_id: str) -> dict[str, Any]:
    """The chord's callback: merge the shards of job `job_id` (`results`: what the shard tasks returned)."""
    runner = runner_for(str(self.request.hostname))
    try:
        outcome = runner.merge(job_id)
    except redis.RedisError as exc:
        raise self.retry(countdown=REDIS_RETRY_S, max_retries=None) from exc
    except Exception as exc:
        outcome = runner.merge_failed(job_id, exc, int(self.request.retries) + 1)
    return _follow(self, outcome, "merge")
