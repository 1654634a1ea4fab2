"""Job metrics for /metrics, read from Redis at scrape time (the job store and the broker are shared by every API
and worker process, so no process can count them itself): the Celery queue's depth, jobs by status, and a histogram
of the run time of recently ended jobs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs.queuestats import queue_depth
from jobs.records import STATUSES, TERMINAL, Status
from jobs.store import JobStore

log = logging.getLogger("ssa.service")
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)
RECENT_JOBS = 1000  # ended jobs per status whose run time the histogram shows (the most recently created)


def duration_histogram(durations: list[tuple[Status, float]]) -> HistogramMetricFamily:
    """`ssa_job_duration_seconds` by status, from (status, seconds) pairs."""
    family = HistogramMetricFamily(
        "ssa_job_duration_seconds", f"Run time (start to end) of the last {RECENT_JOBS} ended jobs of each status "
        "that ran (jobs cancelled while queued never ran).", labels=["status"])
    for status in (s for s in STATUSES if s in TERMINAL):
        seconds = [value for of, value in durations if of == status]
        per_bucket = [sum(1 for value in seconds if value <= bound) for bound in DURATION_BUCKETS]
        buckets = [(repr(bound), count) for bound, count in zip(DURATION_BUCKETS, per_bucket, strict=True)]
        family.add_metric([status], [*buckets, ("+Inf", len(seconds))], sum(seconds))
    return family


class JobMetrics(Collector):
    """A collector over the job store and the Celery queue `queue`; `ssa_job_store_up` 0 when Redis cannot be
    read (the other job metrics are then left out, not reported as zeros)."""

    def __init__(self, jobs: JobStore, queue: str) -> None:
        self.jobs, self.queue = jobs, queue

    def collect(self) -> Iterator[Metric]:
        try:
            depth = queue_depth(self.jobs.redis, self.queue)
            counts = self.jobs.count_by_status()
            durations = self.jobs.recent_durations(RECENT_JOBS)
        except redis.RedisError as exc:
            log.warning("metrics: the job store is unreachable (%s)", exc.__class__.__name__)
            yield GaugeMetricFamily("ssa_job_store_up", "1 when the job store (Redis) answered.", value=0)
            return
        yield GaugeMetricFamily("ssa_job_store_up", "1 when the job store (Redis) answered.", value=1)
        yield GaugeMetricFamily("ssa_job_queue_depth", "Job messages waiting in the Celery queue for a worker.",
                                value=depth)
        jobs = GaugeMetricFamily("ssa_jobs", "Jobs in the job store by status.", labels=["status"])
        for status, count in counts.items():
            jobs.add_metric([status], count)
        yield jobs
        yield duration_histogram(durations)
