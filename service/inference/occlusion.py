"""The occlusion explainer's own lane: a bound on concurrent occlusion requests and the threads they run on, apart
from the micro-batcher, so that a few expensive explanations cannot hold up plain predictions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class OcclusionBusy(Exception):
    """`limit` occlusion requests are running already."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(f"{limit} occlusion request(s) are running, the most this server allows at once; "
                         f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class OcclusionLane:
    """Runs at most `limit` occlusion requests at once (each on a thread of its own); refuses the next at once."""

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.running = 0
        self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="occlusion")

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work` off the event loop, or raise OcclusionBusy when the lane is full (the event loop is single-
        threaded, so the count needs no lock)."""
        if self.running >= self.limit:
            raise OcclusionBusy(self.limit, self.retry_after_s)
        self.running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self.running -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
