"""The heartbeat that keeps a running job's Redis lease alive (a daemon thread), and notices when it is lost."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

import redis

from jobs.store import JobStore

log = logging.getLogger("ssa.worker")


class Heartbeat:
    """Refreshes `token`'s lease on `job_id` every `interval_s` while the job runs. `lost` turns True when another
    holder took the lease (this copy must stop); Redis being unreachable for a while is only logged."""

    def __init__(self, jobs: JobStore, job_id: str, token: str, ttl_s: float, interval_s: float) -> None:
        self.jobs, self.job_id, self.token = jobs, job_id, token
        self.ttl_s, self.interval_s = ttl_s, interval_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if not self.jobs.heartbeat(self.job_id, self.token, self.ttl_s):
                    self.lost = True
                    log.error("job %s: lease lost to another worker; this copy stops", self.job_id)
                    return
            except redis.RedisError as exc:
                log.warning("job %s: heartbeat failed (%s); retrying", self.job_id, exc)
