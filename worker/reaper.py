"""The worker's periodic housekeeping: re-queues jobs whose worker died (their lease expired while they were
`running`), so that they resume from their last checkpoint within about a lease lifetime, instead of waiting for the
broker's visibility timeout; and, when SSA_JOB_RETENTION_DAYS is set, removes ended jobs past it (jobs.removal)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from jobs.labelspec import TRAIN_KIND
from jobs.records import RUNNING
from jobs.store import JobStore

log = logging.getLogger("ssa.worker")


class Reaper:
    """Every `interval_s`, finds orphaned jobs and sends each one a new delivery (once per dead run, whichever
    worker's reaper gets there first). A redelivery of the old message later finds the job leased or ended."""

    def __init__(self, jobs: JobStore, requeue: Callable[[str], None], interval_s: float, marker_ttl_s: int,
                 expire: Callable[[], list[str]] | None = None) -> None:
        self.jobs, self.requeue, self.expire = jobs, requeue, expire
        self.interval_s, self.marker_ttl_s = interval_s, marker_ttl_s
        self._stop = threading.Event()

    def sweep(self) -> list[str]:
        """Re-queue the orphans this call is first to see; their ids."""
        requeued = []
        for job_id in self.jobs.orphans():
            job = self.jobs.get(job_id)
            if job is None or job.status != RUNNING or job.kind != TRAIN_KIND:
                continue  # a label job's shards are re-delivered by the broker (acks_late), see worker.label_tasks
            if self.jobs.mark_requeued(job_id, job.attempts, self.marker_ttl_s):
                self.requeue(job_id)
                self.jobs.add_event(job_id, "requeued", reason="its worker stopped (lease expired)",
                                    attempt=job.attempts)
                log.warning("job %s: its worker stopped during attempt %d; queued again", job_id, job.attempts)
                requeued.append(job_id)
        return requeued

    def start(self) -> None:
        threading.Thread(target=self._run, name="ssa-reaper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
                if self.expire is not None and (removed := self.expire()):
                    log.info("retention: removed %d ended jobs: %s", len(removed), ", ".join(removed))
            except redis.RedisError as exc:
                log.warning("reaper: Redis unreachable (%s); trying again in %.0f s", exc, self.interval_s)
