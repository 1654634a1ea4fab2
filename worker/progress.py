"""Training progress into the job's Redis hash: stage, progress 0-1, ETA, per-iteration metrics; and the stop check
(cancel requested, or lease lost) that the training loop asks at every step."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from jobs.records import IterationSummary, iteration_summary
from jobs.store import JobStore
from ssa_core.records import IterationRecord
from ssa_core.train.trainer import Progress
from worker.lease import Heartbeat

WRITE_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 1.0
# Shares of the progress bar: loading before the first step, training steps, export after the last step.
LOADING, TRAINING, EXPORTING = 0.03, 0.87, 0.95


def fraction(progress: Progress) -> float:
    """Overall progress 0-1 of a training run."""
    if progress.stage == "loading" or progress.total_steps == 0:
        return LOADING
    if progress.stage == "exporting":
        return EXPORTING
    if progress.stage == "done":
        return 0.99
    return LOADING + TRAINING * progress.step / progress.total_steps


class JobProgress:
    """The `TrainingCallback` of one job attempt."""

    def __init__(self, jobs: JobStore, job_id: str, token: str, heartbeat: Heartbeat, metric: str,
                 logger: logging.Logger, iterations: list[IterationSummary]) -> None:
        self.jobs, self.job_id, self.token = jobs, job_id, token
        self.heartbeat, self.metric, self.log = heartbeat, metric, logger
        self.iterations = iterations
        self.cancelled = False
        self.lease_lost = False
        self._stage = ""
        self._written = 0.0
        self._checked = 0.0
        self._first: tuple[float, int] | None = None

    # ---- TrainingCallback ----------------------------------------------------------------------------
    def on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        changed = progress.stage != self._stage
        if changed:
            self.log.info("stage %s (iteration %d of %d, step %d of %d)", progress.stage, progress.iteration + 1,
                          progress.iterations, progress.step, progress.total_steps)
            self._stage = progress.stage
        fields: dict[str, Any] = {"stage": progress.stage, "progress": round(fraction(progress), 4),
                                  "eta_s": self._eta(progress, now), "iteration": progress.iteration,
                                  "step": progress.step, "total_steps": progress.total_steps}
        if progress.stage == "evaluated" and isinstance(progress.metrics, IterationRecord):
            fields["iterations"] = self._record(progress.metrics)
        elif not changed and now - self._written < WRITE_EVERY_S:
            return
        self._write(fields, now)

    def should_stop(self) -> bool:
        if self.heartbeat.lost:
            self.lease_lost = True
        now = time.monotonic()
        if not self.cancelled and now - self._checked >= CANCEL_CHECK_EVERY_S:
            self._checked = now
            try:
                self.cancelled = self.jobs.cancel_requested(self.job_id)
            except redis.RedisError as exc:  # training goes on; the heartbeat decides whether the lease survived
                self.log.warning("cannot check for cancellation: %s", exc)
        return self.cancelled or self.lease_lost

    def set_stage(self, stage: str, progress: float) -> None:
        """A stage outside the training loop (e.g. publishing), written at once."""
        self.log.info("stage %s", stage)
        self._stage = stage
        self._write({"stage": stage, "progress": progress, "eta_s": None}, time.monotonic())

    # ---- helpers -------------------------------------------------------------------------------------
    def _write(self, fields: dict[str, Any], now: float) -> None:
        self._written = now
        try:
            if not self.jobs.update(self.job_id, self.token, **fields):
                self.lease_lost = True
        except redis.RedisError as exc:  # progress is best effort while Redis is away
            self.log.warning("cannot record progress: %s", exc)

    def _eta(self, progress: Progress, now: float) -> float | None:
        """Seconds left, from this attempt's pace over its training steps so far."""
        if progress.stage not in ("training", "probing", "evaluating", "evaluated") or progress.total_steps == 0:
            return None
        if self._first is None:
            self._first = (now, progress.step)
            return None
        started, first_step = self._first
        done = progress.step - first_step
        if done <= 0:
            return None
        return round((now - started) / done * (progress.total_steps - progress.step), 1)

    def _record(self, metrics: IterationRecord) -> list[IterationSummary]:
        summary = iteration_summary(metrics, self.metric)
        self.iterations[:] = [i for i in self.iterations if i.iteration != summary.iteration] + [summary]
        self.iterations.sort(key=lambda item: item.iteration)
        self.log.info("iteration %d: dev %s %.4f, train loss %.4f, kept rate %s", summary.iteration, self.metric,
                      summary.dev_metric or 0.0, summary.train_loss or 0.0, summary.kept_rate)
        return self.iterations
