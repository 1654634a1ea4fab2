"""Micro-batching: concurrent predict requests are grouped into one model call, run off the event loop.

Up to `workers` batches run at once, each on a thread of its own, on the same ONNX Runtime session (its run() is
thread-safe). On a CPU this keeps every core busy: while one batch is in Python (tokenization, character spans,
rendering) or waiting for the event loop, another is in the model, and a core taken by the event loop slows one
batch instead of stalling a parallel-for that spans both cores.

A request becomes a PendingRequest holding the Predictor it was admitted with, so that a hot swap never changes the
model under a request: batches already queued or running finish on the old Predictor. The queue is bounded (QueueFull)
and every request has a deadline (DeadlineExceeded)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ssa_core.runtime.predictor import InputTooLong, Item, Prediction

log = logging.getLogger("ssa.batcher")


class PredictorLike(Protocol):
    max_length: int

    def predict(self, items: Sequence[Item], *, truncate: bool = True, return_tokens: bool = True,
                return_words: bool = True, batch_size: int = 64) -> list[Prediction]: ...

    def token_count(self, item: Item) -> int: ...


class QueueFull(Exception):
    """The queue holds `queue_size` requests already."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the prediction queue is full; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class DeadlineExceeded(Exception):
    """A request was not answered within its deadline."""


class BatcherStopped(Exception):
    """The batcher shut down before the request ran."""


@dataclass(frozen=True)
class Options:
    truncate: bool = True
    return_tokens: bool = True
    return_words: bool = True


@dataclass(eq=False)
class PendingRequest:
    predictor: PredictorLike
    items: list[Item]
    options: Options
    finish: Callable[[list[Prediction]], Any]  # runs in the inference thread: e.g. renders the response body
    future: asyncio.Future[Any]
    enqueued: float = field(default_factory=time.monotonic)
    abandoned: bool = False


@dataclass
class BatchStats:
    inputs: int
    requests: int
    seconds: float


def run_requests(requests: list[PendingRequest], bucket_size: int) -> list[Any]:
    """Run requests as few predict calls (one per Predictor); one outcome per request: its result or its exception.
    Each call sorts its inputs by length and runs them in chunks of `bucket_size` (little padding).

    When a shared call fails, each request is retried alone so that one bad input cannot fail its neighbours."""
    outcomes: list[Any] = [None] * len(requests)
    groups: dict[int, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault(id(request.predictor), []).append(index)
    for indices in groups.values():
        try:
            results = _run_group([requests[i] for i in indices], bucket_size)
        except Exception:
            if len(indices) == 1:
                raise
            results = [_run_alone(requests[i], bucket_size) for i in indices]
        for i, result in zip(indices, results, strict=True):
            outcomes[i] = result
    return outcomes


def _run_alone(request: PendingRequest, bucket_size: int) -> Any:
    try:
        return _run_group([request], bucket_size)[0]
    except Exception as exc:
        return exc


def _run_group(requests: list[PendingRequest], bucket_size: int) -> list[Any]:
    """One predict call over all items of requests that share a Predictor (it sorts them by length)."""
    predictor = requests[0].predictor
    items = [item for request in requests for item in request.items]
    predictions = predictor.predict(
        items, truncate=True, batch_size=bucket_size,
        return_tokens=any(j.options.return_tokens for j in requests),
        return_words=any(j.options.return_words for j in requests))
    results: list[Any] = []
    start = 0
    for request in requests:
        mine = predictions[start : start + len(request.items)]
        start += len(request.items)
        results.append(_finish(request, mine))
    return results


def _finish(request: PendingRequest, predictions: list[Prediction]) -> Any:
    if not request.options.truncate:
        for index, prediction in enumerate(predictions):
            if prediction.truncated:
                predictor = request.predictor
                return InputTooLong(index, predictor.token_count(request.items[index]), predictor.max_length)
    for prediction in predictions:
        prediction.tokens = prediction.tokens if request.options.return_tokens else None
        prediction.words = prediction.words if request.options.return_words else None
    try:
        return request.finish(predictions)
    except Exception as exc:
        return exc


def _expire(request: PendingRequest, timeout_s: float) -> None:
    """A request's deadline passed before a batch answered it: it fails with DeadlineExceeded, and a batch that has
    not started yet skips it."""
    if not request.future.done():
        request.abandoned = True
        request.future.set_exception(DeadlineExceeded(f"no answer within {timeout_s:g} s"))


class MicroBatcher:
    """Groups queued requests into batches of at most `max_batch_size` inputs, waiting at most `max_wait_s` for more;
    a batch runs length-sorted in chunks of `bucket_size` inputs; at most `workers` batches run at once."""

    def __init__(self, *, max_batch_size: int, max_wait_s: float, queue_size: int, bucket_size: int = 8,
                 workers: int = 1, on_batch: Callable[[BatchStats], None] | None = None,
                 on_queue: Callable[[int], None] | None = None) -> None:
        self.max_batch_size, self.max_wait_s, self.queue_size = max_batch_size, max_wait_s, queue_size
        self.bucket_size, self.workers = bucket_size, workers
        self.on_batch, self.on_queue = on_batch, on_queue
        self._pending: deque[PendingRequest] = deque()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)  # one per batch that may run at once
        self._in_flight: set[asyncio.Task[None]] = set()
        self._running = 0  # batches running now
        self._idle = threading.Event()  # set while nothing is queued or running (read from other threads)
        self._idle.set()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssa-infer")
        self._task: asyncio.Task[None] | None = None
        self._recent_batch_s = 0.05
        self._last_requests = 0

    # ---- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="ssa-batcher")

    async def stop(self) -> None:
        """Stop taking batches; batches already running finish and answer their requests; queued ones fail."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        while self._pending:
            request = self._pending.popleft()
            if not request.future.done():
                request.future.set_exception(BatcherStopped("the service is shutting down"))
        self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def depth(self) -> int:
        return len(self._pending)

    # ---- requests ---------------------------------------------------------------------------------------
    async def submit(self, predictor: PredictorLike, items: list[Item], options: Options,
                     finish: Callable[[list[Prediction]], Any], timeout_s: float) -> Any:
        """Queue one request and wait for its result; raises QueueFull, DeadlineExceeded, or the request's error."""
        if self._task is None or self._task.done():
            raise BatcherStopped("the batcher is not running")
        if len(self._pending) >= self.queue_size:
            raise QueueFull(self._retry_after())
        loop = asyncio.get_running_loop()
        request = PendingRequest(predictor, items, options, finish, loop.create_future())
        self._pending.append(request)
        self._queue_changed()
        # one timer instead of wait_for(shield(...)): fewer futures and loop callbacks per request. A request whose
        # task is cancelled (its client went away) cancels the request's future, so a batch not yet started skips it.
        deadline = loop.call_later(timeout_s, _expire, request, timeout_s)
        try:
            return await request.future
        finally:
            deadline.cancel()

    def _retry_after(self) -> int:
        batches_ahead = len(self._pending) / max(1, self.max_batch_size) / self.workers
        return max(1, round(batches_ahead * self._recent_batch_s + 0.5))

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Block the calling thread (not the event loop) until no plain prediction is queued or running, or for at
        most `timeout_s`; whether it became idle. The occlusion lane calls it before each of its runs, so plain
        predictions go first and occlusion is slowed under load, never starved."""
        return self._idle.wait(timeout_s)

    def _update_idle(self) -> None:
        if self._pending or self._running:
            self._idle.clear()
        else:
            self._idle.set()

    def _queue_changed(self) -> None:
        self._update_idle()
        self._wake.set()
        if self.on_queue:
            self.on_queue(len(self._pending))

    # ---- the loop ---------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        """Wait for work and a free worker, collect a batch, start it; meanwhile collect the next."""
        while True:
            await self._wait_for_work()
            await self._slots.acquire()
            requests = await self._collect()
            if not requests:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(requests), name="ssa-batch")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _wait_for_work(self) -> None:
        while not self._pending:
            self._wake.clear()
            await self._wake.wait()

    async def _collect(self) -> list[PendingRequest]:
        """Under load (a batch is running, or the last one grouped several requests) wait until a batch is full, or:
        - while no batch runs (the cores are free): until the oldest request has waited max_wait_s;
        - while another batch runs (the cores are busy anyway): until no request has arrived for max_wait_s, so that
          the requests a finished batch's clients send next join one batch instead of trickling into small ones.
        A lone request at low load runs at once. Then take requests in arrival order."""
        under_load = self._running > 0 or self._last_requests > 1 or len(self._pending) > 1
        while under_load and sum(len(j.items) for j in self._pending) < self.max_batch_size:
            since = self._pending[-1].enqueued if self._running else self._pending[0].enqueued
            remaining = since + self.max_wait_s - time.monotonic()
            if remaining <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        return self._take()

    def _take(self) -> list[PendingRequest]:
        requests: list[PendingRequest] = []
        size = 0
        while self._pending and (not requests or size + len(self._pending[0].items) <= self.max_batch_size):
            request = self._pending.popleft()
            if request.abandoned or request.future.done():
                request.future.cancel()
                continue
            requests.append(request)
            size += len(request.items)
        if requests:
            self._running += 1  # counted before the queue is seen to shrink, so idle is never set in between
        self._queue_changed()
        return requests

    async def _run(self, requests: list[PendingRequest]) -> None:
        """Run one batch on a worker thread and answer its requests; frees its worker slot."""
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(self._executor, run_requests, requests, self.bucket_size)
        except Exception as exc:
            log.exception("inference batch failed")
            outcomes = [exc] * len(requests)
        finally:
            self._running -= 1
            self._slots.release()
            self._update_idle()
            self._wake.set()  # a batch collecting while this one ran may start now (see _collect)
        seconds = time.perf_counter() - start
        self._recent_batch_s = 0.8 * self._recent_batch_s + 0.2 * seconds
        self._last_requests = len(requests)
        if self.on_batch:
            self.on_batch(BatchStats(sum(len(j.items) for j in requests), len(requests), seconds))
        for request, outcome in zip(requests, outcomes, strict=True):
            if request.abandoned or request.future.done():
                request.future.cancel()
                continue
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)
