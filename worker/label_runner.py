"""The steps of a label job, Celery-free (worker.label_tasks maps their outcomes onto Celery): `plan` (claim the
job, cut it into shards), `run_shard` (label rows [start, end) into the shard's file) and `merge` (the shard files,
in input order, into labels.jsonl and labels.parquet, then the job succeeds).

Shards share one job lease token (recorded with the plan): whichever shard runs keeps the job's lease alive and
writes the job's progress (the sum of the shards' rows). A shard copy holds a lease of its own, so that a duplicate
delivery of a live shard is deferred while a copy delivered again after its worker died runs (and counts once)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import redis

from jobs.label_shards import LABELS_JSONL, LABELS_PARQUET, OUTPUT_DIR, ShardRange, shard_file, shard_ranges
from jobs.labelspec import LABEL_KIND, LabelDataRecord, LabelJobSpec
from jobs.records import CANCELLED, SUCCEEDED, Job
from jobs.shards import Join, Plan, ShardStore
from jobs.store import JobStore
from ssa_core.data.datasets import DatasetColumns, DatasetError, Example, load_example_range
from ssa_core.errors import ConfigError, NotFound
from ssa_core.labeling.files import (
    atomic_path,
    concat_jsonl,
    records_of,
    release_free_memory,
    write_jsonl_lines,
    write_parquet,
)
from ssa_core.labeling.labeler import Labeler, LabelingError, LabelOptions, labelled_chunks
from ssa_core.runtime.artifacts import ArtifactStore
from worker.joblog import job_logger
from worker.lease import Heartbeat
from worker.modelcache import predictor_for
from worker.redact import redact_paths
from worker.settings import WorkerSettings

log = logging.getLogger("ssa.worker")
CHUNK_ROWS = 16  # rows per step: progress, cancel check
MERGE_SHARE = 0.98  # of the progress bar, the shards' share (the merge is the rest)
PERMANENT = (NotFound, DatasetError, ConfigError, LabelingError)


class LabelCancelled(Exception):
    """The job's cancel was requested: the shard stops at its next step."""


class LeaseLost(Exception):
    """Another attempt of the job (or another copy of the shard) holds the lease now."""


@dataclass(frozen=True)
class StepOutcome:
    """`done`: acknowledge. `dispatch` (plan only): send the shards. `defer`: deliver again in `delay_s` without
    counting an attempt. `retry`: this attempt failed and attempts are left."""

    action: Literal["done", "dispatch", "defer", "retry"]
    status: str = ""
    delay_s: float = 0.0
    shards: tuple[ShardRange, ...] = ()


def load_input(job_dir: Path, data: LabelDataRecord, shard: ShardRange) -> list[Example]:
    """The shard's rows of the job's input, read back exactly as the API validated them and only up to the
    shard's end (ssa_core.data.datasets.load_example_range): a shard never holds the whole file."""
    path = job_dir / data.file
    if not path.is_file():
        raise ConfigError(f"the job's input file {data.file} is missing")
    columns = DatasetColumns(data.text_column, data.text_pair_column, data.label_column)
    return load_example_range(path, columns, data.task, data.labelled, shard.start, shard.end)


def describe(exc: BaseException) -> tuple[str, bool]:
    """A one-line error for the job's record, and whether retrying is pointless."""
    if isinstance(exc, NotFound):
        return f"the model is gone: {exc.args[0] if exc.args else exc}", True
    if isinstance(exc, PERMANENT):
        return f"invalid job: {exc}", True
    return f"{type(exc).__name__}: {exc}", False


class LabelRunner:
    """Runs the steps of label jobs for one worker process."""

    def __init__(self, settings: WorkerSettings, jobs: JobStore, store: ArtifactStore, worker: str | None = None):
        self.settings, self.jobs, self.store = settings, jobs, store
        self.shards = ShardStore(jobs)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"

    # ---- plan ----------------------------------------------------------------------------------------
    def plan(self, job_id: str) -> StepOutcome:
        """Claim a queued label job and cut it into shards (`dispatch`), unless a delivery did so already."""
        job = self.jobs.get(job_id)
        if job is None or job.kind != LABEL_KIND:
            return StepOutcome("done", "missing" if job is None else "not a label job")
        plan = self.shards.plan(job_id)
        if plan is not None and plan.dispatched and not job.terminal:
            return StepOutcome("done", "dispatched")  # a second delivery of a job whose shards were sent
        token = f"{self.worker}:{uuid.uuid4().hex[:8]}"
        claim = self.jobs.claim(job_id, token=token, worker=self.worker, ttl_s=self.settings.lease_ttl_s,
                                max_attempts=self.settings.max_attempts)
        if claim.outcome == "leased":
            return StepOutcome("defer", delay_s=max(1.0, self.settings.lease_ttl_s / 2))
        if claim.outcome != "claimed":
            if claim.outcome != "missing":
                self.jobs.add_event(job_id, f"delivery-{claim.outcome}", worker=self.worker)
            return StepOutcome("done", claim.detail or claim.outcome)
        self.jobs.add_event(job_id, "started", worker=self.worker, attempt=claim.attempt)
        with job_logger(self.store.job_dir(job_id), job_id, claim.attempt, self.store.root) as joblog:
            try:
                spec, data = self._records(job)
                ranges = shard_ranges(data.rows, spec.shard_rows)
                self.shards.save_plan(job_id, token, ranges)
                self.jobs.update(job_id, token, stage="labelling", progress=0.0, step=0, total_steps=len(ranges))
                joblog.info("attempt %d on %s: %d rows in %d shards of at most %d rows, model %s", claim.attempt,
                            self.worker, data.rows, len(ranges), spec.shard_rows, job.model_id)
            except Exception as exc:
                message, _ = describe(exc)
                joblog.error("cannot start: %s\n%s", message, "".join(traceback.format_exception(exc)))
                self._fail(job_id, message)
                return StepOutcome("done", "failed")
        return StepOutcome("dispatch", shards=tuple(ranges))

    def dispatched(self, job_id: str, shards: int) -> None:
        self.shards.mark_dispatched(job_id)
        self.jobs.add_event(job_id, "dispatched", shards=shards)

    @staticmethod
    def _records(job: Job) -> tuple[LabelJobSpec, LabelDataRecord]:
        if not isinstance(job.config, LabelJobSpec) or not isinstance(job.data, LabelDataRecord):
            raise ConfigError("the job's record is not a label job's")
        return job.config, job.data

    # ---- one shard -----------------------------------------------------------------------------------
    def run_shard(self, job_id: str, shard: ShardRange) -> StepOutcome:
        """One delivery of a shard."""
        plan = self.shards.plan(job_id)
        job = self.jobs.get(job_id)
        if plan is None or job is None:
            return StepOutcome("done", "missing")
        joined = self._join_step(job_id, plan, shard.shard, shard.describe())
        if isinstance(joined, StepOutcome):
            return joined
        token, join = joined
        self.jobs.add_event(job_id, "shard-started", shard=shard.shard, worker=self.worker, attempt=join.attempt)
        with job_logger(self.store.job_dir(job_id), job_id, join.attempt, self.store.root) as joblog, \
                Heartbeat.for_shard(self.shards, job_id, shard.shard, plan.token, token,
                                    self.settings.lease_ttl_s, self.settings.heartbeat_s) as beat:
            try:
                self._label(job, plan, shard, beat, joblog)
            except BaseException as exc:  # every way out leaves the job and the shard in a known state
                return self._shard_failed(job_id, plan, shard, token, join.attempt, exc, joblog)
        self.shards.release(job_id, shard.shard, token)
        self.jobs.add_event(job_id, "shard-done", shard=shard.shard, worker=self.worker, attempt=join.attempt)
        return StepOutcome("done", SUCCEEDED)

    def _join_step(self, job_id: str, plan: Plan, step: int, what: str, waiting: str = ""
                   ) -> tuple[str, Join] | StepOutcome:
        """Take the lease of step `step` (a shard, or the merge as one more) for a new token of this delivery: the
        token and the join, or the StepOutcome that ends this delivery (deferred while another copy holds the step,
        the job cancelled or ended, the step out of attempts or done)."""
        token = f"{self.worker}:{uuid.uuid4().hex[:8]}"
        join = self.shards.join(job_id, step, job_token=plan.token, token=token, ttl_s=self.settings.lease_ttl_s,
                                max_attempts=self.settings.max_attempts, now=time.time())
        if join.outcome == "leased":
            return StepOutcome("defer", waiting, delay_s=max(1.0, self.settings.lease_ttl_s / 2))
        if join.outcome == "cancelled":
            self._cancel(job_id, plan, f"{what} found the job cancelled")
            return StepOutcome("done", CANCELLED)
        if join.outcome == "exhausted":
            self._fail(job_id, f"{what} failed {join.detail} times (its worker stopped)")
            return StepOutcome("done", "failed")
        if join.outcome != "claimed":
            return StepOutcome("done", join.outcome)
        return token, join

    def _label(self, job: Job, plan: Plan, shard: ShardRange, beat: Heartbeat, joblog: logging.Logger) -> None:
        spec, data = self._records(job)
        job_dir = self.store.job_dir(job.id)
        if shard.end > data.rows:
            raise ConfigError(f"{shard.describe()} lies past the job's {data.rows} rows")
        examples = load_input(job_dir, data, shard)
        predictor = predictor_for(self.store, str(job.model_id), self.settings.label_threads or None)
        labeler = Labeler(predictor, LabelOptions(spec.probes_per_row, spec.batch_size), data.labelled)
        joblog.info("%s on %s", shard.describe(), self.worker)
        out = job_dir / OUTPUT_DIR / shard_file(shard.shard)
        out.parent.mkdir(parents=True, exist_ok=True)
        done = 0
        with atomic_path(out) as temporary, temporary.open("w", encoding="utf-8") as handle:
            for records in labelled_chunks(labeler, examples, 0, len(examples), CHUNK_ROWS, offset=shard.start):
                write_jsonl_lines(records, handle)
                done += len(records)
                self._step(job, plan, shard, done, beat)
        finished = self.shards.finish_shard(job.id, shard.shard, shard.rows)
        self._progress(job, plan, self.shards.set_rows(job.id, shard.shard, shard.rows), step=finished)
        joblog.info("%s done (%d of %d shards)", shard.describe(), finished, len(plan.shards))

    def _step(self, job: Job, plan: Plan, shard: ShardRange, done: int, beat: Heartbeat) -> None:
        if beat.lost:
            raise LeaseLost(f"{shard.describe()}: another copy holds the shard now")
        if self.jobs.cancel_requested(job.id):
            raise LabelCancelled(f"cancel requested: {shard.describe()} stopped after {done} rows")
        self._progress(job, plan, self.shards.set_rows(job.id, shard.shard, done))

    def _progress(self, job: Job, plan: Plan, rows_done: int, step: int | None = None) -> None:
        fraction = MERGE_SHARE * rows_done / max(1, plan.rows)
        elapsed = time.time() - (job.started_at or time.time())
        eta = round(elapsed / fraction * (MERGE_SHARE - fraction), 1) if fraction > 0 else None
        fields = {"progress": round(fraction, 4), "eta_s": eta, **({} if step is None else {"step": step})}
        try:
            self.jobs.update(job.id, plan.token, **fields)
        except redis.RedisError as exc:  # progress is best effort while Redis is away
            log.warning("job %s: cannot record progress: %s", job.id, exc)

    def _shard_failed(self, job_id: str, plan: Plan, shard: ShardRange, token: str, attempt: int,
                      exc: BaseException, joblog: logging.Logger) -> StepOutcome:
        self.shards.release(job_id, shard.shard, token)
        if isinstance(exc, LeaseLost):
            joblog.warning("%s", exc)
            return StepOutcome("done", "lease-lost")
        if isinstance(exc, LabelCancelled):
            joblog.info("%s", exc)
            self._cancel(job_id, plan, str(exc))
            return StepOutcome("done", CANCELLED)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise exc
        message, permanent = describe(exc)
        joblog.error("%s, attempt %d failed: %s\n%s", shard.describe(), attempt, message,
                     "".join(traceback.format_exception(exc)))
        self.jobs.add_event(job_id, "shard-failed", shard=shard.shard, worker=self.worker, attempt=attempt,
                            error=message)
        if permanent:
            self._fail(job_id, f"{shard.describe()}: {message}")
            return StepOutcome("done", "failed")
        if attempt >= self.settings.max_attempts:
            self._fail(job_id, f"{shard.describe()} failed {attempt} times; last: {message}")
            return StepOutcome("done", "failed")
        return StepOutcome("retry", delay_s=self.settings.retry_delay_s)

    # ---- merge ---------------------------------------------------------------------------------------
    def merge(self, job_id: str) -> StepOutcome:
        """The shard files into the job's labels.jsonl and labels.parquet, in input order; the job succeeds.

        The Parquet writing (pyarrow, every record parsed again) briefly needs far more memory than a shard; what it
        freed is handed back to the system afterwards, or this long-lived pool process keeps it (about +150 MB
        resident for the rest of its life, seen as the worker's memory growing over a large job)."""
        try:
            return self._merge(job_id)
        finally:
            release_free_memory()

    def _merge(self, job_id: str) -> StepOutcome:
        job, plan = self.jobs.get(job_id), self.shards.plan(job_id)
        if job is None or plan is None:
            return StepOutcome("done", "missing")
        job_dir = self.store.job_dir(job_id)
        if job.terminal:
            shutil.rmtree(job_dir / OUTPUT_DIR, ignore_errors=True)
            return StepOutcome("done", job.status)
        if job.cancel_requested:
            self._cancel(job_id, plan, "cancelled before the merge")
            return StepOutcome("done", CANCELLED)
        if len(self.shards.done(job_id)) < len(plan.shards):
            return StepOutcome("defer", "waiting for shards", delay_s=1.0)  # a duplicate run fired the chord early
        # the merge leases like one more shard (number len(plan.shards)): a copy delivered again while the first
        # still runs waits (it finds the job done afterwards), one delivered after the first's worker died runs
        step = len(plan.shards)
        joined = self._join_step(job_id, plan, step, "the merge", waiting="another copy is merging")
        if isinstance(joined, StepOutcome):
            return joined
        token, _ = joined
        try:
            return self._merge_claimed(job, plan, step, token)
        finally:
            self.shards.release(job_id, step, token)

    def _merge_claimed(self, job: Job, plan: Plan, step: int, token: str) -> StepOutcome:
        job_dir = self.store.job_dir(job.id)
        with job_logger(job_dir, job.id, job.attempts, self.store.root) as joblog, \
                Heartbeat.for_shard(self.shards, job.id, step, plan.token, token, self.settings.lease_ttl_s,
                                    self.settings.heartbeat_s, what=f"job {job.id} merge") as beat:
            self.jobs.update(job.id, plan.token, stage="merging", progress=MERGE_SHARE, eta_s=None)
            parts = [job_dir / OUTPUT_DIR / shard_file(shard.shard) for shard in plan.shards]
            concat_jsonl(parts, job_dir / LABELS_JSONL)
            written = write_parquet(records_of(parts), job_dir / LABELS_PARQUET)
            if beat.lost:  # this copy stalled past its lease and another took the merge over: that one finishes
                return StepOutcome("done", "lease-lost")
            self.jobs.finish(job.id, plan.token, SUCCEEDED, stage="done", progress=1.0, error=None,
                             step=len(plan.shards))
            self.jobs.add_event(job.id, SUCCEEDED, worker=self.worker, rows=written)
            joblog.info("succeeded: %d rows labelled in %d shards", written, len(plan.shards))
        shutil.rmtree(job_dir / OUTPUT_DIR, ignore_errors=True)
        return StepOutcome("done", SUCCEEDED)

    def merge_failed(self, job_id: str, exc: BaseException, attempt: int) -> StepOutcome:
        message, permanent = describe(exc)
        log.error("job %s: merge attempt %d failed: %s", job_id, attempt, message)
        if permanent or attempt >= self.settings.max_attempts:
            self._fail(job_id, f"merging the shards failed: {message}")
            return StepOutcome("done", "failed")
        return StepOutcome("retry", delay_s=self.settings.retry_delay_s)

    # ---- endings -------------------------------------------------------------------------------------
    def _cancel(self, job_id: str, plan: Plan, why: str) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.terminal:
            return
        if self.shards.hold(job_id, plan.token, self.settings.lease_ttl_s) and \
                self.jobs.finish(job_id, plan.token, CANCELLED, stage=CANCELLED, error=None):
            self.jobs.add_event(job_id, CANCELLED, worker=self.worker, reason=why)
            shutil.rmtree(self.store.job_dir(job_id) / OUTPUT_DIR, ignore_errors=True)

    def _fail(self, job_id: str, error: str) -> None:
        error = redact_paths(error, self.store.job_dir(job_id), self.store.root)
        if self.jobs.fail_if_active(job_id, error):
            self.jobs.add_event(job_id, "failed", worker=self.worker, error=error)
            shutil.rmtree(self.store.job_dir(job_id) / OUTPUT_DIR, ignore_errors=True)
