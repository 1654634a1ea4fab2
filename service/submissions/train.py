"""Submitting a training job: validate the config and the datasets, save them in the job folder, record the job
in Redis and queue it. Nothing reaches the queue unless all of it is valid."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.basemodels import base_model_positions
from jobs.folder import CONFIG_FILE
from jobs.records import QUEUED, Columns, DataRecord, FilePair, IdempotencyBinding, SplitRecord, Status
from jobs.spec import TrainJobSpec, build_configs
from jobs.store import JobStore
from service.errors import ApiError, InvalidField, ServiceError
from service.settings import Settings
from service.submissions.uploadcheck import SummaryRequest, summarize_here
from service.submissions.uploads import Upload, keep
from ssa_core.data.datasets import DatasetColumns, DatasetError, DatasetSummary, check_splits, split_summary
from ssa_core.data.formats import format_of
from ssa_core.errors import ConfigError
from ssa_core.runtime.artifacts import ArtifactStore

log = logging.getLogger("ssa.service")
IDEMPOTENCY_TTL_S = 24 * 3600
MODEL_ID_RESERVE_S = 600  # how long a reservation outlives a submission that died before recording its job
MAX_LISTED_PROBLEMS = 100


@dataclass(frozen=True)
class Submitted:
    job_id: str
    model_id: str
    status: Status
    created: bool  # False: an earlier submission with the same Idempotency-Key


class UploadRejected(ServiceError):
    """An uploaded dataset (the form field `field`) failed its checks: the DatasetError's problems, with their row
    numbers; `str()` names the first five."""

    def __init__(self, field: str, error: DatasetError) -> None:
        self.field, self.problems = field, error.problems
        shown = "; ".join(str(p) for p in error.problems[:5])
        count = len(error.problems)
        more = f" (and {count - 5} more)" if count > 5 else ""
        super().__init__(f"{field}: {count} problem{'' if count == 1 else 's'} in the dataset: {shown}{more}")

    def detail(self) -> list[dict[str, object]]:
        """The problems (at most MAX_LISTED_PROBLEMS), each with its field, row and column."""
        return [{"field": self.field, "row": p.row, "column": p.column, "message": p.message}
                for p in self.problems[:MAX_LISTED_PROBLEMS]]


class QueueUnavailable(ServiceError):
    """A job was recorded (and marked failed) but could not be queued: the broker is unreachable."""

    def __init__(self, job_id: str, retry_after_s: int = 10) -> None:
        super().__init__("the job queue is unreachable; try again later")
        self.job_id, self.retry_after_s = job_id, retry_after_s


Validator = Callable[[SummaryRequest], DatasetSummary]  # raises DatasetError (the API's: a UploadCheckPool)


class JobSubmitter:
    """Validates and queues training jobs; `enqueue(job_id)` hands a job to the broker, `summarize` checks one staged
    upload (default: in this process)."""

    def __init__(self, settings: Settings, store: ArtifactStore, jobs: JobStore, enqueue: Callable[[str], None],
                 summarize: Validator = summarize_here):
        self.settings, self.store, self.jobs, self.enqueue = settings, store, jobs, enqueue
        self.summarize = summarize

    def submit(self, config: TrainJobSpec, train: Upload, dev: Upload | None,
               idempotency_key: str | None = None) -> Submitted:
        """Validate everything, then record and queue the job (or return the job an earlier submission with the
        same Idempotency-Key made). Raises ApiError (409, 413), InvalidField and UploadRejected (422),
        QueueUnavailable (503)."""
        self._check_base_model(config.base_model)
        self._check_max_length(config)
        data = self.validate_data(config, train, dev)
        job_id = uuid.uuid4().hex
        if idempotency_key is not None:
            earlier = self.jobs.reserve_idempotency_key(idempotency_key, job_id, fingerprint(config, train, dev),
                                                        IDEMPOTENCY_TTL_S)
            if earlier is not None:
                return earlier_submission(self.jobs, earlier, fingerprint(config, train, dev))
        model_id = config.model_id or default_model_id(config, job_id)
        try:
            self._reserve_model_id(model_id, job_id)
            return self._create(job_id, model_id, config, train, dev, data)
        except BaseException:
            self.jobs.release_model_id(model_id, job_id)
            if idempotency_key is not None:
                self.jobs.release_idempotency_key(idempotency_key, job_id)
            raise

    # ---- validation ----------------------------------------------------------------------------------
    def _check_base_model(self, name: str) -> None:
        allowed = self.settings.base_models
        if name not in allowed:
            raise InvalidField("config.base_model", f"{name!r} is not allowed (allowed: {', '.join(allowed)})")

    def _check_max_length(self, config: TrainJobSpec) -> None:
        """max_length must fit the base model's position embeddings: a longer model trains but cannot serve."""
        positions = base_model_positions(config.base_model, self.settings.allowed_base_models)
        if positions is not None and config.max_length > positions:
            raise InvalidField("config.max_length", f"must be at most {positions}: the base model "
                               f"{config.base_model!r} has {positions} positions")

    def validate_data(self, config: TrainJobSpec, train: Upload, dev: Upload | None) -> DataRecord:
        """Load and check the datasets and the configs they imply; the job's `data` record."""
        columns = DatasetColumns(config.text_column, config.text_pair_column, config.label_column)
        train_ds = self._load(train, columns, config)
        dev_ds = self._load(dev, train_ds.columns, config) if dev is not None else None
        try:
            check_splits(train_ds, dev_ds)
            if dev_ds is None:
                train_count, dev_rows = split_summary(train_ds, dev_fraction=config.dev_fraction, seed=config.seed)
            else:
                train_count, dev_rows = train_ds.count, list(dev_ds.rows)
        except DatasetError as exc:
            raise UploadRejected("train" if dev is None else "dev", exc) from None
        check_configs(config, train_ds)
        return data_record(train, dev, train_ds, train_count, dev_rows, config, split=dev_ds is None)

    def _load(self, upload: Upload, columns: DatasetColumns, config: TrainJobSpec) -> DatasetSummary:
        try:
            source = upload.label_studio
            return self.summarize(SummaryRequest(upload.path, upload.filename, columns, config.task,
                                                self.settings.max_upload_bytes,
                                                label_studio=source.path if source is not None else None,
                                                label_studio_name=source.filename if source is not None else ""))
        except DatasetError as exc:
            raise UploadRejected(upload.field, exc) from None

    # ---- recording -----------------------------------------------------------------------------------
    def _reserve_model_id(self, model_id: str, job_id: str) -> None:
        """409 unless `model_id` is free: no such model, and no queued or running job reserved it (atomically, so
        that of parallel submissions naming one id exactly one is queued)."""
        if self.store.has_model(model_id):
            raise ApiError(409, "model_exists", f"config.model_id: model {model_id!r} already exists",
                           [{"field": "config.model_id", "message": "already exists"}])
        holder = self.jobs.reserve_model_id(model_id, job_id, MODEL_ID_RESERVE_S)
        if holder is not None:
            message = f"reserved by job {holder}, which has not ended"
            raise ApiError(409, "model_exists", f"config.model_id: model {model_id!r} is {message}",
                           [{"field": "config.model_id", "message": message, "job_id": holder}])

    def _create(self, job_id: str, model_id: str, config: TrainJobSpec, train: Upload, dev: Upload | None,
                data: DataRecord) -> Submitted:
        job_dir = self.store.job_dir(job_id)
        save_files(job_dir, train, dev, data)
        record = {"config": config.model_dump(mode="json"), "data": data.to_json_value()}
        record_and_queue(self.jobs, self.enqueue, job_dir, record,
                         lambda: self.jobs.create(job_id, config=config, data=data, model_id=model_id), job_id)
        return Submitted(job_id, model_id, QUEUED, created=True)


def earlier_submission(jobs: JobStore, earlier: IdempotencyBinding, print_now: str) -> Submitted:
    """The job an earlier submission with the same Idempotency-Key made; 409 when that submission was a different
    one, or is still being recorded."""
    if earlier.fingerprint != print_now:
        raise ApiError(409, "idempotency_conflict", "this Idempotency-Key was used for a different submission",
                       {"field": "Idempotency-Key", "job_id": earlier.job_id})
    job = jobs.get(earlier.job_id)
    if job is None:
        raise ApiError(409, "idempotency_conflict", "a submission with this Idempotency-Key is still being "
                       "recorded; retry in a moment", {"field": "Idempotency-Key"}, {"Retry-After": "1"})
    return Submitted(job.id, str(job.model_id), job.status, created=False)


def record_and_queue(jobs: JobStore, enqueue: Callable[[str], None], job_dir: Path, record: dict[str, Any],
                     create: Callable[[], object], job_id: str) -> None:
    """The tail every submission shares: write the job's config file, record the job (`create`), queue it; 503
    (the job marked failed) when the queue is unreachable."""
    (job_dir / CONFIG_FILE).write_text(json.dumps(record, indent=2))
    create()
    try:
        enqueue(job_id)
    except Exception as exc:
        log.error("could not queue job %s: %s", job_id, exc)
        jobs.fail_if_active(job_id, f"could not be queued: {exc}")
        raise QueueUnavailable(job_id) from None


def check_configs(config: TrainJobSpec, train: DatasetSummary) -> None:
    """Build ssa_core's configs once (the worker's rule), so that their own checks fail here (422) rather than on
    a worker."""
    try:
        build_configs(config, base_model=config.base_model, labels=train.labels, task=train.task)
    except ConfigError as exc:
        raise InvalidField("config" if exc.field is None else f"config.{exc.field}", exc.reason) from None


def data_record(train: Upload, dev: Upload | None, full: DatasetSummary, train_count: int, dev_rows: list[int],
                config: TrainJobSpec, split: bool) -> DataRecord:
    """What the worker needs to read the data back exactly as validated here (see worker.jobdata)."""
    columns = full.columns
    return DataRecord(
        files=FilePair(train=stored_name("train", train.filename),
                       dev=stored_name("dev", dev.filename) if dev is not None else None),
        uploaded=FilePair(train=train.filename, dev=dev.filename if dev is not None else None),
        columns=Columns(text=columns.text, text_pair=columns.text_pair, label=columns.label),
        task=full.task, labels=list(full.labels), pair=full.pair,
        train_examples=train_count, dev_examples=len(dev_rows),
        split=SplitRecord(dev_fraction=config.dev_fraction, seed=config.seed, dev_rows=dev_rows) if split else None)


def stored_name(field: str, filename: str) -> str:
    return f"{field}.{format_of(filename)}"


def save_files(job_dir: Path, train: Upload, dev: Upload | None, data: DataRecord) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    names = {"train": data.files.train, "dev": data.files.dev}
    for upload in (train, dev):
        name = names.get(upload.field) if upload is not None else None
        if upload is not None and name is not None:
            keep(upload, job_dir / name)


def fingerprint(config: TrainJobSpec, train: Upload, dev: Upload | None) -> str:
    digest = hashlib.sha256(json.dumps(config.model_dump(), sort_keys=True).encode())
    for upload in (train, dev):
        digest.update(b"\0" if upload is None else bytes.fromhex(upload.sha256))
    return digest.hexdigest()


def default_model_id(config: TrainJobSpec, job_id: str) -> str:
    return f"{config.method}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{job_id[:6]}"
