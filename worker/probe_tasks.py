"""The Celery task `ssa.probe-shard`: one shard of a training job's fanned-out probing pass (worker.probe_fanout).
The training process waits on the shard store, not on this task's result, and runs again any shard that fails
here (bounded by SSA_MAX_ATTEMPTS), so a failure is logged and acknowledged, never retried by Celery. Torch and the
probing code are imported on first use (Flower imports this module to learn the task names)."""

from __future__ import annotations

import logging
import os
from typing import Any

import redis
from celery import Task

from jobs.probe_shard_messages import ProbeShardMessage
from jobs.producer import PROBE_SHARD_TASK_NAME
from jobs.store import JobStore
from ssa_core.runtime.artifacts import ArtifactStore
from worker.celery_app import app
from worker.settings import worker_settings

log = logging.getLogger("ssa.worker")
REDIS_RETRY_S = 15


@app.task(name=PROBE_SHARD_TASK_NAME, bind=True, max_retries=None)
def probe_shard(self: Task, message: dict[str, Any]) -> dict[str, Any]:
    """Run one probe shard unless it is done, held by a live copy, or its pass is over."""
    from worker.probe_fanout import run_probe_shard

    shard = ProbeShardMessage.model_validate(message)
    settings = worker_settings()
    try:
        outcome = run_probe_shard(JobStore.from_url(settings.redis_url), ArtifactStore(settings.home), shard,
                                  worker=f"{self.request.hostname}:{os.getpid()}", ttl_s=settings.lease_ttl_s,
                                  heartbeat_s=settings.heartbeat_s, max_attempts=settings.max_attempts)
    except redis.RedisError as exc:
        raise self.retry(countdown=REDIS_RETRY_S, max_retries=None) from exc
    except Exception as exc:  # the training process runs the shard again
        log.error("job %s probe shard %d failed: %s: %s", shard.job_id, shard.shard.shard, type(exc).__name__, exc)
        return {"shard": shard.shard.shard, "status": "failed"}
    if outcome == "ran":
        log.info("job %s probe %s shard %d done", shard.job_id, shard.call, shard.shard.shard)
    return {"shard": shard.shard.shard, "status": outcome}
