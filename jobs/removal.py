"""Removing ended jobs: one job on request (DELETE /jobs/{id}) or every job past the retention time (the worker's
housekeeping). The record goes first (one Redis step, only when the job has ended), then its folder, so that a failure
in between leaves at most an unlisted folder, never a listed job whose files are half gone."""

from __future__ import annotations

import logging
import time

from jobs.records import DeleteResult
from jobs.store import JobStore
from ssa_core.runtime.artifacts import ArtifactStore

log = logging.getLogger("ssa.jobs")
DAY_S = 86_400.0


def remove_job(jobs: JobStore, store: ArtifactStore, job_id: str) -> DeleteResult:
    """Delete an ended job's record, then its folder; a queued or running job is kept (outcome `active`)."""
    result = jobs.delete_ended(job_id)
    if result.outcome == "deleted":
        store.remove_job_folder(job_id)
        log.info("removed job %s (%s) and its files", job_id, result.status)
    return result


def expire_jobs(jobs: JobStore, store: ArtifactStore, retention_days: float, now: float | None = None,
                limit: int = 500) -> list[str]:
    """Remove the ended jobs whose end (finished_at; updated_at or created_at for records without one) lies more
    than `retention_days` back; their ids. 0 or less: nothing is removed."""
    if retention_days <= 0:
        return []
    cutoff = (time.time() if now is None else now) - retention_days * DAY_S
    removed = []
    for job in jobs.ended_created_before(cutoff, limit):
        ended = job.finished_at or job.updated_at or job.created_at
        if ended < cutoff and remove_job(jobs, store, job.id).outcome == "deleted":
            removed.append(job.id)
    return removed
