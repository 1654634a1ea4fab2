"""Queues jobs by Celery task *name*, with only the settings a producer needs (broker URL, serializers, the task's
queue): the API never imports the worker's Celery app, its task code or its settings. The worker's app starts from
the same configuration."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from celery import Celery

QUEUE: Final = "ssa-train"
TASK_NAME: Final = "ssa.train"
# A label job: `ssa.label` plans it and sends its shards (`ssa.label-shard`) as a chord whose callback is
# `ssa.label-merge`; all on the same queue, so that every worker takes shards.
LABEL_TASK_NAME: Final = "ssa.label"
LABEL_SHARD_TASK_NAME: Final = "ssa.label-shard"
LABEL_MERGE_TASK_NAME: Final = "ssa.label-merge"
# A training job whose training set is larger than SSA_TRAIN_PROBE_FANOUT_ROWS sends its probing passes as
# `ssa.probe-shard` tasks (worker.probe_fanout), on the same queue.
PROBE_SHARD_TASK_NAME: Final = "ssa.probe-shard"


JOBS_EXTRA_MISSING: Final = ("this installation cannot run jobs: Celery is not installed (pip install "
                              "'ssa-service[jobs]')")


@lru_cache(maxsize=1)
def jobs_installed() -> bool:
    """Celery imports: jobs can be queued (a prediction-only install leaves the `jobs` extra out)."""
    try:
        import celery  # noqa: F401
    except ImportError:
        return False
    return True


def producer_config(redis_url: str) -> dict[str, Any]:
    """What every app that sends or runs jobs shares: where the broker is, JSON only, and the task's queue."""
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": QUEUE,
        "task_routes": {name: {"queue": QUEUE} for name in (TASK_NAME, LABEL_TASK_NAME, LABEL_SHARD_TASK_NAME,
                                                             LABEL_MERGE_TASK_NAME, PROBE_SHARD_TASK_NAME)},
        "task_send_sent_event": True,  # Flower shows queued jobs
    }


@lru_cache(maxsize=8)
def producer_app(redis_url: str) -> Celery:
    """An app that only sends tasks to the broker at `redis_url` (one per URL, reused)."""
    from celery import Celery

    celery = Celery("ssa", set_as_current=False)
    celery.conf.update(producer_config(redis_url))
    return celery


def enqueue_training(celery: Celery, job_id: str, *, countdown: float | None = None) -> None:
    """Queue training job `job_id` on `celery`'s broker (the task id is the job id)."""
    celery.send_task(TASK_NAME, args=[job_id], queue=QUEUE, task_id=job_id, countdown=countdown)


def enqueue_labeling(celery: Celery, job_id: str, *, countdown: float | None = None) -> None:
    """Queue label job `job_id` on `celery`'s broker (the task id is the job id)."""
    celery.send_task(LABEL_TASK_NAME, args=[job_id], queue=QUEUE, task_id=job_id, countdown=countdown)
