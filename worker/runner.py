"""One delivery of a training job: claim its lease, train (resuming from the last checkpoint), publish, deploy.

Celery-free, so that it can be run and tested in-process; worker.tasks maps its `Outcome` onto Celery retries.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from celery.exceptions import SoftTimeLimitExceeded

from jobs.deploy import NotServable, gate_and_deploy, load_checked
from jobs.folder import CHECKPOINTS_DIR, LABELS_DIR
from jobs.labelspec import TRAIN_KIND
from jobs.probe_shard_messages import PROBE_DIR, ProbeShardMessage
from jobs.records import CANCELLED, FAILED, QUEUED, SUCCEEDED, Claim, DataRecord, Int8Outcome, Job, JobResult
from jobs.spec import TrainJobSpec
from jobs.store import JobStore
from ssa_core.data.datasets import Dataset, DatasetError
from ssa_core.errors import ConfigError
from ssa_core.evaluation.report import items_of
from ssa_core.export.quantize import QuantizationRefused, add_int8_variant
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.train.pipeline import TrainResult, train_model
from ssa_core.train.trainer import TrainingCancelled
from worker.jobdata import JobInputError, JobInputs, load_inputs
from worker.joblog import job_logger
from worker.lease import Heartbeat
from worker.probe_fanout import FanoutForward
from worker.progress import JobProgress
from worker.publish import StorageError, check_writable, job_staging, publish, storage_problem
from worker.redact import redact_paths
from worker.settings import WorkerSettings

log = logging.getLogger("ssa.worker")
PERMANENT = (StorageError, JobInputError, ConfigError, DatasetError, NotServable)
LEASE_LOST = "lease-lost"


@dataclass(frozen=True)
class Finished:
    """What a succeeded attempt records on the job."""

    deployed: bool
    deploy_note: str
    result: JobResult


@dataclass(frozen=True)
class Outcome:
    """`done`: acknowledge the message. `defer`: another copy holds the lease; deliver again in `delay_s`.
    `retry`: this attempt failed and attempts are left; run again in `delay_s`."""

    action: Literal["done", "defer", "retry"]
    status: str | None = None  # a job status, or what the delivery found (e.g. lease-lost)
    delay_s: float = 0.0


class JobRunner:
    """Runs jobs for one worker process."""

    def __init__(self, settings: WorkerSettings, jobs: JobStore, store: ArtifactStore, worker: str | None = None,
                 device: str | None = None, send_probe: Callable[[ProbeShardMessage], None] | None = None) -> None:
        self.settings, self.jobs, self.store = settings, jobs, store
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.device = device or settings.train_device
        self.send_probe = send_probe  # queues a probe shard (worker.tasks); None: fanned-out shards run here
        self.last_fanout: FanoutForward | None = None

    def run(self, job_id: str) -> Outcome:
        """Handle one delivery of `job_id`."""
        found = self.jobs.get(job_id)
        if found is not None and found.kind != TRAIN_KIND:  # a label job runs as worker.label_tasks, never here
            return Outcome("done", status=f"not a training job ({found.kind})")
        token = f"{self.worker}:{uuid.uuid4().hex[:8]}"
        claim = self.jobs.claim(job_id, token=token, worker=self.worker, ttl_s=self.settings.lease_ttl_s,
                                max_attempts=self.settings.max_attempts)
        if claim.outcome != "claimed":
            return self._not_claimed(job_id, claim)
        self.jobs.add_event(job_id, "started", worker=self.worker, attempt=claim.attempt)
        return self._attempt(job_id, token, claim.attempt)

    def _not_claimed(self, job_id: str, claim: Claim) -> Outcome:
        if claim.outcome == "leased":
            delay = max(1.0, self.settings.lease_ttl_s / 2)
            log.info("job %s is leased by %s: deferring this delivery by %.0f s", job_id, claim.detail, delay)
            self.jobs.add_event(job_id, "deferred", worker=self.worker, holder=claim.detail)
            return Outcome("defer", delay_s=delay)
        log.info("job %s: delivery ignored (%s %s)", job_id, claim.outcome, claim.detail)
        if claim.outcome != "missing":
            self.jobs.add_event(job_id, f"delivery-{claim.outcome}", worker=self.worker)
        return Outcome("done", status=claim.detail or claim.outcome)

    # ---- one attempt ---------------------------------------------------------------------------------
    def _attempt(self, job_id: str, token: str, attempt: int) -> Outcome:
        job = self.jobs.get(job_id)
        assert job is not None
        job_dir = self.store.job_dir(job_id)
        with job_logger(job_dir, job_id, attempt, self.store.root) as joblog, \
                Heartbeat.for_job(self.jobs, job_id, token, self.settings.lease_ttl_s,
                                  self.settings.heartbeat_s) as beat:
            joblog.info("attempt %d of %d on %s", attempt, self.settings.max_attempts, self.worker)
            progress = JobProgress(self.jobs, job_id, token, beat, "", joblog, list(job.iterations))
            try:
                result = self._train(job, job_dir, progress, joblog, token)
            except BaseException as exc:  # every way out leaves the job in a known state
                return self._failed(job, token, attempt, exc, progress, joblog)
            self.jobs.finish(job_id, token, SUCCEEDED, stage="done", progress=1.0, error=None,
                             deployed=result.deployed, deploy_note=result.deploy_note, result=result.result)
            self.jobs.add_event(job_id, SUCCEEDED, worker=self.worker, attempt=attempt)
            joblog.info("succeeded: model %s (%s)", job.model_id, result.deploy_note)
        return Outcome("done", status=SUCCEEDED)

    def _train(self, job: Job, job_dir: Path, progress: JobProgress, joblog: logging.Logger, token: str) -> Finished:
        check_writable(self.store)
        if not isinstance(job.config, TrainJobSpec) or not isinstance(job.data, DataRecord | None):
            raise JobInputError("the job's record is not a training job's")
        spec = job.config
        inputs = load_inputs(job_dir, spec, job.data, self.settings.allowed_base_models)
        progress.metric = inputs.train_cfg.metric_for(inputs.model_cfg.task)
        checkpoints = job_dir / CHECKPOINTS_DIR
        if (checkpoints / "latest.json").is_file():
            joblog.info("resuming from the checkpoint in %s", checkpoints)
        model_id = str(job.model_id)
        with job_staging(self.store, job.id) as staged:
            forward = self._probe_forward(job.id, token, len(inputs.train.examples), progress, joblog)
            outcome = self._fit(inputs, staged, checkpoints, job_dir / LABELS_DIR, progress, model_id, forward)
            progress.set_stage("checking the model", 0.99)
            check_servable(staged, joblog)
            int8 = None
            if spec.quantize == "int8":
                progress.set_stage("int8 variant", 0.99)
                int8 = int8_variant(staged, inputs.dev, spec.int8_min_agreement, joblog)
            progress.set_stage("publishing", 0.99)
            publish(self.store, staged, model_id, job.id)
        progress.set_stage("deploy gate", 0.995)
        metrics = outcome.metrics
        report = gate_and_deploy(self.store, spec.deploy, model_id, inputs.dev, metrics.metric,
                                 max_entropy=self.settings.deploy_max_attention_entropy, joblog=joblog)
        self._drop_checkpoints(job.id)
        summary = JobResult(model_id=model_id, metric=metrics.metric, dev_metric=metrics.dev_metric,
                            best_iteration=metrics.best_iteration, parity_max_abs_diff=outcome.parity,
                            deploy_gate=report, int8=int8)
        return Finished(report.deployed, report.reason, summary)

    def _fit(self, inputs: JobInputs, staged: Path, checkpoints: Path, labels: Path, progress: JobProgress,
             model_id: str, forward: FanoutForward | None = None) -> TrainResult:
        return train_model(inputs.train, inputs.dev, inputs.model_cfg, inputs.train_cfg, staged, callback=progress,
                           checkpoint_dir=checkpoints, labels_dir=labels, device=self.device, model_id=model_id,
                           probe_forward=forward)

    def _probe_forward(self, job_id: str, token: str, rows: int, progress: JobProgress,
                       joblog: logging.Logger) -> FanoutForward | None:
        """The fanned-out probing of a training set larger than SSA_TRAIN_PROBE_FANOUT_ROWS (0: never)."""
        threshold = self.settings.train_probe_fanout_rows
        if threshold <= 0 or rows <= threshold:
            return None
        joblog.info("%d training rows > SSA_TRAIN_PROBE_FANOUT_ROWS=%d: probing runs as shards over the workers",
                    rows, threshold)
        s = self.settings
        self.last_fanout = FanoutForward(
            self.jobs, self.store, job_id, token, shard_rows=s.train_probe_shard_rows, worker=self.worker,
            ttl_s=s.lease_ttl_s, heartbeat_s=s.heartbeat_s, max_attempts=s.max_attempts, send=self.send_probe,
            should_stop=progress.should_stop, joblog=joblog)
        return self.last_fanout

    # ---- failures ------------------------------------------------------------------------------------
    def _failed(self, job: Job, token: str, attempt: int, exc: BaseException, progress: JobProgress,
                joblog: logging.Logger) -> Outcome:
        if progress.lease_lost:  # another worker holds the job now: leave its state alone
            joblog.warning("stopped: another worker holds the job's lease now")
            return Outcome("done", status=LEASE_LOST)
        if isinstance(exc, TrainingCancelled) and progress.cancelled:
            self._drop_checkpoints(job.id)
            self.jobs.finish(job.id, token, CANCELLED, stage=CANCELLED, error=None)
            self.jobs.add_event(job.id, CANCELLED, worker=self.worker, attempt=attempt)
            joblog.info("cancelled: %s", exc)
            return Outcome("done", status=CANCELLED)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise exc
        message, permanent = describe(exc, self.settings)
        message = redact_paths(message, self.store.job_dir(job.id), self.store.root)
        # the traceback reaches the worker's own log only (the job's log file drops it: worker.joblog)
        joblog.error("attempt %d failed: %s", attempt, message, exc_info=exc)
        self.jobs.add_event(job.id, "attempt-failed", worker=self.worker, attempt=attempt, error=message)
        if permanent or attempt >= self.settings.max_attempts:
            error = message if permanent else f"failed after {attempt} attempts; last: {message}"
            self._drop_checkpoints(job.id)
            self.jobs.finish(job.id, token, FAILED, stage=FAILED, error=error)
            return Outcome("done", status=FAILED)
        self.jobs.finish(job.id, token, QUEUED, stage="waiting to retry", error=message, eta_s=None)
        return Outcome("retry", status=QUEUED, delay_s=self.settings.retry_delay_s)

    def _drop_checkpoints(self, job_id: str) -> None:
        """A job that has ended is never resumed: its checkpoints (about 4x the model's size) go."""
        shutil.rmtree(self.store.job_dir(job_id) / CHECKPOINTS_DIR, ignore_errors=True)
        shutil.rmtree(self.store.job_dir(job_id) / PROBE_DIR, ignore_errors=True)


def check_servable(staged: Path, joblog: logging.Logger) -> None:
    """Before a model becomes visible: load the exported folder through the ONNX runtime and predict a short and a
    max-length input, as the API will. Raises NotServable (a permanent failure: the model is not published)."""
    try:
        load_checked(staged)
    except NotServable as exc:
        joblog.error("the exported model cannot serve: %s", exc)
        raise
    joblog.info("the exported model loads and predicts through the ONNX runtime")


def int8_variant(staged: Path, dev: Dataset, min_agreement: float, joblog: logging.Logger) -> Int8Outcome:
    """The job's `quantize: int8`: add the variant when it agrees with fp32 on the dev set; a refusal is logged and
    recorded, and the job goes on with fp32 alone."""
    try:
        report = add_int8_variant(staged, items_of(dev, dev.pair), min_agreement=min_agreement)
    except QuantizationRefused as exc:
        joblog.warning("int8 variant not written: %s", exc)
        measured = exc.report.agreement if exc.report else 0.0
        return Int8Outcome(written=False, agreement=measured, checked_inputs=len(dev.examples),
                           min_agreement=min_agreement, reason=str(exc))
    joblog.info("int8 variant written: it predicted fp32's label on %.2f%% of %d dev inputs", 100 * report.agreement,
                report.inputs)
    return Int8Outcome(written=True, agreement=report.agreement, checked_inputs=report.inputs,
                       min_agreement=min_agreement)


def describe(exc: BaseException, settings: WorkerSettings) -> tuple[str, bool]:
    """A clear one-line error for the job's record, and whether retrying is pointless."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return (f"time limit exceeded: the job ran longer than SSA_TASK_SOFT_TIME_LIMIT_S="
                f"{settings.task_soft_time_limit_s} s", True)
    if isinstance(exc, StorageError):
        return str(exc), True
    if isinstance(exc, NotServable):
        return f"the trained model cannot serve, so it was not published: {exc}", True
    reason = storage_problem(exc)
    if reason is not None:
        return f"cannot write to the artifact store: {reason} (check the free space and permissions of SSA_HOME)", True
    if isinstance(exc, DatasetError | ConfigError | JobInputError):
        return f"invalid job: {exc}", True
    return f"{type(exc).__name__}: {exc}", False
