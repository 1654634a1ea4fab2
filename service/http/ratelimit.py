"""A per-client rate limit (a sliding window of start times), for expensive reads such as model downloads. It lives
in the API process: with several API processes each one counts on its own."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_CLIENTS = 10_000  # clients remembered at once; the oldest idle ones are forgotten first


class RateLimited(Exception):
    """A client took its `limit` starts of the window already; it may start again in `retry_after_s`."""

    def __init__(self, retry_after_s: int, limit: int) -> None:
        super().__init__(f"retry after {retry_after_s} s")
        self.retry_after_s, self.limit = retry_after_s, limit


class RateLimiter:
    """At most `limit` starts per `window_s` seconds per client id."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._starts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """Count one start for `client`; RateLimited (with the seconds until a slot frees) when over the limit."""
        now = self.clock()
        with self._lock:
            starts = self._starts.pop(client, None) or deque()
            while starts and starts[0] <= now - self.window_s:
                starts.popleft()
            self._starts[client] = starts  # re-inserted: the dict's order is least recently used first
            if len(starts) >= self.limit:
                raise RateLimited(max(1, math.ceil(starts[0] + self.window_s - now)), self.limit)
            starts.append(now)
            while len(self._starts) > MAX_CLIENTS:
                self._starts.pop(next(iter(self._starts)))


def client_id(api_key: str | None, address: str | None) -> str:
    """Whom a limit counts: the key (hashed, never kept as it is), else the client's address."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode("utf-8", "replace")).hexdigest()[:32]
    return f"addr:{address or 'unknown'}"
