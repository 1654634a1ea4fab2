"""The heartbeat that keeps a running job's (or label shard's) Redis lease alive (a daemon thread), and notices when
it is lost."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

import redis

from jobs.shards import ShardStore
from jobs.store import JobStore

log = logging.getLogger("ssa.worker")


class Heartbeat:
    """Calls `renew()` every `interval_s` while the work runs. `lost` turns True when it returns False (another
    holder took the lease: this copy must stop); Redis being unreachable for a while is only logged."""

    def __init__(self, renew: Callable[[], bool], what: str, interval_s: float) -> None:
        self.renew, self.what, self.interval_s = renew, what, interval_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {what}", daemon=True)

    @classmethod
    def for_job(cls, jobs: JobStore, job_id: str, token: str, ttl_s: float, interval_s: float) -> Heartbeat:
        """Refreshes `token`'s lease on job `job_id`."""
        return cls(lambda: jobs.heartbeat(job_id, token, ttl_s), f"job {job_id}", interval_s)

    @classmethod
    def for_shard(cls, shards: ShardStore, job_id: str, shard: int, job_token: str, token: str, ttl_s: float,
                  interval_s: float, what: str | None = None) -> Heartbeat:
        """Refreshes `token`'s lease on shard `shard` of job `job_id` and the job's lease (a label shard, or a probe
        shard of a training job: `what` names it in the log); `lost` turns True when this copy no longer holds the
        shard."""
        return cls(lambda: shards.beat(job_id, shard, job_token=job_token, token=token, ttl_s=ttl_s, now=time.time()),
                   what or f"job {job_id} shard {shard}", interval_s)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if not self.renew():
                    self.lost = True
                    log.error("%s: lease lost to another worker; this copy stops", self.what)
                    return
            except redis.RedisError as exc:
                log.warning("%s: heartbeat failed (%s); retrying", self.what, exc)
