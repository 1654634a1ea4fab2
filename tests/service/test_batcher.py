"""The micro-batcher with the real tiny model: grouping, ordering, limits, deadlines, error isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.inference.batcher import BatchStats, DeadlineExceeded, MicroBatcher, Options, QueueFull
from ssa_core.runtime.predictor import InputTooLong, Prediction, Predictor, length_buckets


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor.load(tiny_model_dir, provider="cpu")


def labels(predictions: list[Prediction]) -> list[tuple[str | float, float]]:
    return [(p.label, round(p.score, 5)) for p in predictions]


async def with_batcher(body: Any, **kwargs: Any) -> tuple[Any, list[BatchStats]]:
    stats: list[BatchStats] = []
    options = {"max_batch_size": 32, "max_wait_s": 0.05, "queue_size": 100, **kwargs}
    batcher = MicroBatcher(on_batch=stats.append, **options)
    batcher.start()
    try:
        return await body(batcher), stats
    finally:
        await batcher.stop()


def submit(batcher: MicroBatcher, predictor: Predictor, items: list[Any], options: Options | None = None,
           timeout: float = 10) -> Any:
    return batcher.submit(predictor, items, options or Options(), lambda ps: ps, timeout)


def test_concurrent_requests_share_one_batch_and_keep_their_order(predictor: Predictor) -> None:
    requests = [["a fine film", "dull"], ["the plot is thin but the acting is superb"], ["ok", "bad", "lovely music"]]

    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(*(submit(batcher, predictor, r) for r in requests))

    results, stats = asyncio.run(with_batcher(body))
    assert [labels(r) for r in results] == [labels(predictor.predict(r)) for r in requests]
    assert [(s.inputs, s.requests) for s in stats] == [(6, 3)]


def test_batches_never_exceed_the_max_size(predictor: Predictor) -> None:
    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(*(submit(batcher, predictor, [f"text {i}", "two", "three"]) for i in range(5)))

    results, stats = asyncio.run(with_batcher(body, max_batch_size=7))
    assert all(len(r) == 3 for r in results)
    assert all(s.inputs <= 7 for s in stats) and sum(s.inputs for s in stats) == 15


def test_options_apply_per_request_within_a_shared_batch(predictor: Predictor) -> None:
    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(
            submit(batcher, predictor, ["first"], Options(return_tokens=False, return_words=False)),
            submit(batcher, predictor, ["second"], Options()),
            submit(batcher, predictor, ["short", "word " * 100], Options(truncate=False)),
            return_exceptions=True)

    (bare, full, too_long), stats = asyncio.run(with_batcher(body))
    assert bare[0].tokens is None and bare[0].words is None
    assert full[0].tokens and full[0].words
    assert isinstance(too_long, InputTooLong) and too_long.index == 1 and too_long.length == 102
    assert len(stats) == 1


def test_a_failing_input_does_not_fail_its_neighbours(predictor: Predictor) -> None:
    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(submit(batcher, predictor, ["fine"]),
                                    submit(batcher, predictor, ["bad \ud800 surrogate"]),  # the tokenizer raises
                                    return_exceptions=True)

    (good, bad), _ = asyncio.run(with_batcher(body))
    assert labels(good) == labels(predictor.predict(["fine"]))
    assert isinstance(bad, Exception)


def test_queue_bound_and_deadline(predictor: Predictor) -> None:
    async def body(batcher: MicroBatcher) -> tuple[Any, ...]:
        first = asyncio.ensure_future(submit(batcher, predictor, ["one"], timeout=0.05))
        second = asyncio.ensure_future(submit(batcher, predictor, ["two"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as full:
            await submit(batcher, predictor, ["three"])
        results = await asyncio.gather(first, second, return_exceptions=True)
        return full.value, *results

    (full, first, second), stats = asyncio.run(with_batcher(body, queue_size=2, max_wait_s=0.3))
    assert full.retry_after_s >= 1
    assert isinstance(first, DeadlineExceeded)
    assert labels(second) == labels(predictor.predict(["two"]))
    assert [s.requests for s in stats] == [1], "the abandoned request must not be run"


def test_a_request_cancelled_while_queued_is_not_run(predictor: Predictor) -> None:
    """A request whose task is cancelled (its client went away) leaves the queue: the batch runs the others only."""
    async def body(batcher: MicroBatcher) -> tuple[Any, Any]:
        gone = asyncio.ensure_future(submit(batcher, predictor, ["gone"]))
        kept = asyncio.ensure_future(submit(batcher, predictor, ["kept"]))
        await asyncio.sleep(0.05)  # both queued: two pending requests make the batcher wait max_wait_s to fill up
        gone.cancel()
        return await asyncio.gather(gone, kept, return_exceptions=True)

    (gone, kept), stats = asyncio.run(with_batcher(body, max_wait_s=0.3))
    assert isinstance(gone, asyncio.CancelledError)
    assert labels(kept) == labels(predictor.predict(["kept"]))
    assert [(s.inputs, s.requests) for s in stats] == [(1, 1)]


class Recording(Predictor):
    """The real Predictor, recording the items of every predict call."""

    calls: list[list[Any]]

    def predict(self, items: Any, **kwargs: Any) -> list[Prediction]:
        self.__dict__.setdefault("calls", []).append(list(items))
        return super().predict(items, **kwargs)


def test_jobs_run_on_the_predictor_they_were_admitted_with(tiny_model_dir: Path) -> None:
    old, new = Recording.load(tiny_model_dir, provider="cpu"), Recording.load(tiny_model_dir, provider="cpu")

    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(submit(batcher, old, ["a"]), submit(batcher, new, ["b", "c"]),
                                    submit(batcher, old, ["d"]))

    results, stats = asyncio.run(with_batcher(body))
    assert [len(r) for r in results] == [1, 2, 1]
    assert old.calls == [["a", "d"]] and new.calls == [["b", "c"]]
    assert [(s.inputs, s.requests) for s in stats] == [(4, 3)]


def brute_force_cost(lengths: list[int], max_size: int, overhead: int) -> int:
    """The cheapest cut of `lengths` into consecutive runs, by trying every cut."""
    if not lengths:
        return 0
    return min(overhead + size * lengths[size - 1] + brute_force_cost(lengths[size:], max_size, overhead)
               for size in range(1, min(max_size, len(lengths)) + 1))


@given(st.lists(st.integers(1, 128), max_size=9).map(sorted), st.integers(1, 5), st.sampled_from([0, 8, 2048]))
def test_length_buckets_are_cost_optimal_and_cover_everything(lengths: list[int], max_size: int,
                                                              overhead: int) -> None:
    runs = length_buckets(lengths, max_size, overhead)
    assert [i for start, end in runs for i in range(start, end)] == list(range(len(lengths)))
    assert all(0 < end - start <= max_size for start, end in runs)
    cost = sum(overhead + (end - start) * lengths[end - 1] for start, end in runs)
    assert cost == brute_force_cost(lengths, max_size, overhead)


def test_length_buckets_split_unlike_lengths_on_cpu_and_keep_batches_on_gpu() -> None:
    lengths = [10, 11, 12, 30, 31, 50]
    assert length_buckets(lengths, 8, 8) == [(0, 3), (3, 5), (5, 6)]
    assert length_buckets(lengths, 8, 2048) == [(0, 6)]


class Slow(Predictor):
    """The real Predictor, each batch held back by `delay` seconds (a long plain batch)."""

    delay = 0.4

    def predict(self, items: Any, **kwargs: Any) -> list[Prediction]:
        time.sleep(self.delay)
        return super().predict(items, **kwargs)


def test_wait_until_idle_holds_other_threads_while_plain_work_is_queued_or_running(tiny_model_dir: Path) -> None:
    slow = Slow.load(tiny_model_dir, provider="cpu")

    async def body(batcher: MicroBatcher) -> tuple[bool, bool, float, bool]:
        idle_before = batcher.wait_until_idle(0)
        job = asyncio.ensure_future(submit(batcher, slow, ["a plain request"]))
        await asyncio.sleep(0.05)  # the batch is running now
        loop = asyncio.get_running_loop()
        timed_out = await loop.run_in_executor(None, batcher.wait_until_idle, 0.05)
        started = time.monotonic()
        became_idle = await loop.run_in_executor(None, batcher.wait_until_idle, 5.0)
        waited = time.monotonic() - started
        await job
        return idle_before, timed_out, waited, became_idle

    (idle_before, timed_out, waited, became_idle), _ = asyncio.run(with_batcher(body))
    assert idle_before and not timed_out  # busy while the plain batch runs: the short wait gives up
    assert became_idle and 0.1 < waited < 2.0  # released when the batch ends, not at the timeout


def test_with_two_workers_two_batches_run_at_once_and_answer_in_order(predictor: Predictor) -> None:
    """Each batch's finish waits at a barrier of two: it only passes if both batches are running together."""
    barrier = threading.Barrier(2, timeout=5)

    def finish(predictions: list[Prediction]) -> list[Prediction]:
        barrier.wait()
        return predictions

    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(*(batcher.submit(predictor, [text], Options(), finish, 10)
                                      for text in ("a fine film", "a dull film")))

    results, stats = asyncio.run(with_batcher(body, workers=2, max_batch_size=1))
    assert [labels(r) for r in results] == [labels(predictor.predict([t])) for t in ("a fine film", "a dull film")]
    assert [(s.inputs, s.requests) for s in stats] == [(1, 1), (1, 1)]
    assert not barrier.broken


def test_one_worker_runs_one_batch_at_a_time(predictor: Predictor) -> None:
    barrier = threading.Barrier(2, timeout=0.5)

    def finish(predictions: list[Prediction]) -> list[Prediction]:
        barrier.wait()
        return predictions

    async def body(batcher: MicroBatcher) -> list[Any]:
        return await asyncio.gather(*(batcher.submit(predictor, [text], Options(), finish, 10)
                                      for text in ("a fine film", "a dull film")), return_exceptions=True)

    results, _ = asyncio.run(with_batcher(body, workers=1, max_batch_size=1))
    assert all(isinstance(r, threading.BrokenBarrierError) for r in results)


def test_stop_lets_running_batches_answer(tiny_model_dir: Path) -> None:
    slow = Slow.load(tiny_model_dir, provider="cpu")

    async def body() -> list[Any]:
        batcher = MicroBatcher(max_batch_size=1, max_wait_s=0, queue_size=10, workers=2)
        batcher.start()
        jobs = [asyncio.ensure_future(submit(batcher, slow, [t])) for t in ("one", "two")]
        await asyncio.sleep(0.1)  # both batches are running now
        idle_while_running = batcher.wait_until_idle(0)
        await batcher.stop()
        return [idle_while_running, *(await asyncio.gather(*jobs, return_exceptions=True))]

    idle_while_running, one, two = asyncio.run(body())
    assert not idle_while_running
    assert labels(one) == labels(slow.predict(["one"])) and labels(two) == labels(slow.predict(["two"]))


def test_predict_from_many_threads_truncates_only_what_it_should(predictor: Predictor) -> None:
    """Threads share one Predictor: one thread cutting an over-long input (truncate=True) must not cut the input of
    another that asked not to (truncate=False must still raise InputTooLong)."""
    long_texts = [f"word{i} " * (predictor.max_length + 40) for i in range(8)]

    def work(index: int) -> str:
        text = long_texts[index % len(long_texts)]
        if index % 2 == 0:
            (prediction,) = predictor.predict([text], truncate=True)
            return "cut" if prediction.truncated else "not cut"
        try:
            predictor.predict([text], truncate=False)
        except InputTooLong:
            return "refused"
        return "answered"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(400)))
    assert results == ["cut", "refused"] * 200


def test_while_a_batch_runs_a_burst_of_arrivals_joins_one_batch(tiny_model_dir: Path) -> None:
    """A burst arriving while another batch holds the cores (here: every 20 ms, for 140 ms, with max_wait 50 ms)
    waits until it stops instead of starting as small batches once the oldest request has waited max_wait; a burst
    arriving while nothing runs starts after max_wait as before."""
    slow = Slow.load(tiny_model_dir, provider="cpu")

    async def body(batcher: MicroBatcher) -> list[Any]:
        first = [asyncio.ensure_future(submit(batcher, slow, [t])) for t in ("one", "two")]  # runs 0.05-0.45 s
        await asyncio.sleep(0.1)
        burst = []
        for i in range(8):
            burst.append(asyncio.ensure_future(submit(batcher, slow, [f"text {i}"])))
            await asyncio.sleep(0.02)
        return await asyncio.gather(*first, *burst)

    _, stats = asyncio.run(with_batcher(body, workers=2, max_batch_size=32, max_wait_s=0.05))
    assert [(s.inputs, s.requests) for s in stats] == [(2, 2), (8, 8)]

    async def alone(batcher: MicroBatcher) -> list[Any]:
        await asyncio.gather(*(submit(batcher, slow, [t]) for t in ("one", "two")))  # under load from now on
        burst = []
        for i in range(8):
            burst.append(asyncio.ensure_future(submit(batcher, slow, [f"text {i}"])))
            await asyncio.sleep(0.02)
        return await asyncio.gather(*burst)

    _, stats = asyncio.run(with_batcher(alone, workers=2, max_batch_size=32, max_wait_s=0.05))
    assert stats[0].requests == 2 and stats[1].requests < 8  # the burst's first batch left after max_wait
