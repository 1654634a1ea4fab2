"""Validating dataset uploads out of the API process: the row checks are CPU-bound Python, and run in the API they
would hold its GIL against the event loop and the inference thread (/predict). A small pool of processes (at most
one per upload slot, started on first use, each at a lower CPU priority) summarizes each staged file; what crosses
the process boundary are typed records: a SummaryRequest in, a DatasetSummary or the problems (Rejected) out."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from service.submissions.uploadcheck_task import Rejected, SummaryRequest, lower_priority, summarize
from ssa_core.data.datasets import DatasetError, DatasetSummary

log = logging.getLogger("ssa.service")
NICENESS = 10  # added to the validation processes' niceness: /predict's threads go first
__all__ = ["NICENESS", "Rejected", "SummaryRequest", "UploadCheckPool", "UploadCheckUnavailable", "summarize_here"]
RETRY_AFTER_S = 5


class UploadCheckUnavailable(Exception):
    """An upload check process died while checking an upload (the pool is restarted); retry in `retry_after_s`."""

    def __init__(self, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(f"the upload could not be validated (a validation process died); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def summarize_here(request: SummaryRequest) -> DatasetSummary:
    """Validate in this process (the CLI, tests); raises DatasetError."""
    return _unwrap(summarize(request))


def _unwrap(outcome: DatasetSummary | Rejected) -> DatasetSummary:
    if isinstance(outcome, Rejected):
        raise DatasetError(outcome.problems, outcome.source)
    return outcome


class UploadCheckPool:
    """Validates uploads in up to `workers` processes, started on first use (spawned, not forked: the API has
    threads) and stopped by `shutdown()` (the app's lifespan). Calling it blocks the calling thread until the upload
    is validated; raises DatasetError, or UploadCheckUnavailable when a check process died."""

    def __init__(self, workers: int, niceness: int = NICENESS) -> None:
        self.workers, self.niceness = workers, niceness
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, request: SummaryRequest) -> DatasetSummary:
        pool = self._started()
        try:
            return _unwrap(pool.submit(summarize, request).result())
        except BrokenProcessPool:
            log.error("an upload validation process died; the pool is restarted")
            self._discard(pool)
            raise UploadCheckUnavailable() from None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=lower_priority, initargs=(self.niceness,))
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the processes (waiting for validations under way); the next call starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
