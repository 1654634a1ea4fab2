"""The Celery task `ssa.train`: one argument, the job id. All job logic lives in worker.runner, imported on first
use: Flower (in the torch-free API image) imports this module to learn the task names."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from billiard.einfo import ExceptionInfo
from celery import Task
from celery.exceptions import WorkerLostError
from celery.signals import worker_init, worker_ready

from jobs.probe_shard_messages import ProbeShardMessage
from jobs.producer import PROBE_SHARD_TASK_NAME, QUEUE, TASK_NAME, enqueue_training
from jobs.removal import expire_jobs
from jobs.store import JobStore
from ssa_core.runtime.artifacts import ArtifactStore
from worker.celery_app import app
from worker.reaper import Reaper
from worker.redact import redact_paths
from worker.settings import worker_settings

if TYPE_CHECKING:
    from worker.runner import JobRunner

log = logging.getLogger("ssa.worker")
_runners: dict[int, JobRunner] = {}


def runner_for(worker: str) -> JobRunner:
    """This process's runner (made on first use, after the pool forked it)."""
    from worker.runner import JobRunner

    pid = os.getpid()
    if pid not in _runners:
        settings = worker_settings()
        jobs = JobStore.from_url(settings.redis_url)
        _runners[pid] = JobRunner(settings, jobs, ArtifactStore(settings.home), worker=f"{worker}:{pid}",
                                  send_probe=send_probe_shard)
    return _runners[pid]


def send_probe_shard(message: ProbeShardMessage) -> None:
    """Queue one shard of a fanned-out probing pass (worker.probe_fanout)."""
    app.send_task(PROBE_SHARD_TASK_NAME, args=[message.model_dump(mode="json")], queue=QUEUE)


class TrainTask(Task):
    """Fails the job when the task itself dies in a way the runner cannot see (the hard time limit kills the
    process; this hook then runs in the worker's main process)."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo) -> None:
        if isinstance(exc, WorkerLostError | redis.RedisError) or not args:
            return  # requeued (task_reject_on_worker_lost), or Redis is away: the message is restored later
        settings = worker_settings()
        message = f"{type(exc).__name__}: {exc}"
        if type(exc).__name__ == "TimeLimitExceeded":
            message = f"time limit exceeded: killed after SSA_TASK_TIME_LIMIT_S={settings.task_time_limit_s} s"
        elif type(exc).__name__ == "SoftTimeLimitExceeded":
            message = (f"time limit exceeded: the job ran longer than SSA_TASK_SOFT_TIME_LIMIT_S="
                       f"{settings.task_soft_time_limit_s} s")
        home = Path(settings.home).resolve()
        message = redact_paths(message, home / "jobs" / str(args[0]), home)  # read by API clients
        if JobStore.from_url(settings.redis_url).fail_if_active(str(args[0]), message):
            log.error("job %s failed: %s", args[0], message)


@app.task(name=TASK_NAME, bind=True, base=TrainTask, max_retries=None)
def train(self: Task, job_id: str) -> dict[str, Any]:
    """Run (or resume) training job `job_id`; a delivery that finds the job leased elsewhere is deferred."""
    try:
        outcome = runner_for(str(self.request.hostname)).run(job_id)
    except redis.RedisError as exc:  # the job store is unreachable: try this delivery again later
        log.warning("job %s: Redis unreachable (%s); delivering it again later", job_id, exc)
        raise self.retry(countdown=15, max_retries=None) from exc
    if outcome.action != "done":
        raise self.retry(countdown=outcome.delay_s, max_retries=None)
    return {"job_id": job_id, "status": outcome.status}


@worker_init.connect
def preload_training_code(sender: Any = None, **_: Any) -> None:
    """Import torch and the training code in the worker's main process, before the pool forks: the children share
    it, and a job's time limit does not pay for the import."""
    import worker.runner  # noqa: F401


@worker_ready.connect
def start_reaper(sender: Any = None, **_: Any) -> None:
    """In the worker's main process: re-queue jobs whose worker died and remove ended jobs past
    SSA_JOB_RETENTION_DAYS (both off when SSA_REAPER_INTERVAL_S is 0)."""
    settings = worker_settings()
    if settings.reaper_interval_s <= 0:
        return
    jobs = JobStore.from_url(settings.redis_url)
    store = ArtifactStore(settings.home)
    retention = settings.job_retention_days
    reaper = Reaper(jobs, lambda job_id: enqueue_training(app, job_id), settings.reaper_interval_s,
                    settings.visibility_timeout_s, expire=lambda: expire_jobs(jobs, store, retention))
    reaper.start()
    log.info("reaper: looking for jobs of dead workers every %.0f s", settings.reaper_interval_s)
