"""The Celery app: Redis broker and result backend, and every reliability setting in one place.

No task code here: the worker loads `worker.tasks` through `include`. The broker, serializers and task routing
come from `jobs.producer`, which the API uses to queue jobs by task name without importing this module.

Why each setting:
- JSON only: no pickle ever crosses Redis.
- `task_acks_late` + `task_reject_on_worker_lost`: a message is acknowledged when the job ends, so a worker
  killed mid-job (SIGKILL, OOM) leaves it to be delivered again; the job then resumes from its last iteration
  checkpoint. A Redis lease per job (jobs.store) keeps a second delivery from running while the first
  copy still lives.
- prefetch multiplier 1: a worker process reserves only the job it runs, so queued jobs go to idle workers.
- one visibility timeout for broker and result backend: an unacknowledged message older than it is restored
  to the queue (by any live worker, every `restore_interval_s`, or by a worker that starts). The lock around a
  restore expires after `restore_lock_s`, so a worker killed while restoring does not block restores for long.
- soft/hard time limits and max memory per child bound a run away job.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobs.producer import producer_config
from worker.settings import WorkerSettings, worker_settings


def celery_config(settings: WorkerSettings) -> dict[str, Any]:
    """The Celery configuration derived from `settings`."""
    transport = {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": settings.restore_interval_s,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": settings.restore_lock_s,
    }
    return {
        **producer_config(settings.redis_url),
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "broker_connection_max_retries": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "worker_max_memory_per_child": settings.max_memory_per_child_kb,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_track_started": True,
        "worker_send_task_events": True,
        "result_expires": 7 * 24 * 3600,
    }


def make_app(settings: WorkerSettings | None = None) -> Celery:
    """A Celery app configured from `settings` (default: the environment)."""
    settings = settings or worker_settings()
    celery = Celery("ssa", include=["worker.tasks", "worker.label_tasks", "worker.probe_tasks"])
    celery.conf.update(celery_config(settings))
    return celery


app = make_app()
