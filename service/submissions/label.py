"""Submitting a label job: resolve the model (default: the active one), validate the upload as training uploads are
(same formats, limits and row-numbered problems; labels optional, and when present they must be the model's), save
it in the job folder, record the job in Redis and queue it. Nothing reaches the queue unless all of it is valid."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable

from jobs.labelspec import LabelDataRecord, LabelJobSpec
from jobs.records import QUEUED
from jobs.store import JobStore
from service.errors import ApiError, InvalidField, ServiceError
from service.settings import Settings
from service.submissions.train import (
    IDEMPOTENCY_TTL_S,
    Submitted,
    UploadRejected,
    Validator,
    earlier_submission,
    record_and_queue,
    stored_name,
)
from service.submissions.uploadcheck import SummaryRequest, summarize_here
from service.submissions.uploads import Upload, keep
from ssa_core.config import Task
from ssa_core.data.datasets import DatasetColumns, DatasetError, DatasetSummary
from ssa_core.runtime.artifacts import ArtifactStore
from ssa_core.runtime.modelmeta import ModelMeta, ModelMetaError

log = logging.getLogger("ssa.service")
INPUT_FIELD = "data"


class UnknownModel(ServiceError):
    """The model a label job is to run is not in the store, not readable, or (none named) there is no active model:
    `field` names the config field, `reason` what is wrong with it."""

    field = "config.model_id"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LabelSubmitter:
    """Validates and queues label jobs; `enqueue(job_id)` hands a job to the broker, `summarize` checks the staged
    upload (default: in this process)."""

    def __init__(self, settings: Settings, store: ArtifactStore, jobs: JobStore, enqueue: Callable[[str], None],
                 summarize: Validator = summarize_here):
        self.settings, self.store, self.jobs, self.enqueue = settings, store, jobs, enqueue
        self.summarize = summarize

    def submit(self, spec: LabelJobSpec, upload: Upload, idempotency_key: str | None = None) -> Submitted:
        """Validate, then record and queue the job (or return the one an earlier submission with the same
        Idempotency-Key made). Raises UnknownModel (404), ApiError (409, 413, 422), InvalidField and
        UploadRejected (422), QueueUnavailable (503)."""
        model_id, meta = self.model_of(spec)
        spec = spec.model_copy(update={"model_id": model_id})
        dataset = self.validate(spec, meta, upload)
        job_id = uuid.uuid4().hex
        print_now = fingerprint(spec, upload)
        if idempotency_key is not None:
            earlier = self.jobs.reserve_idempotency_key(idempotency_key, job_id, print_now, IDEMPOTENCY_TTL_S)
            if earlier is not None:
                return earlier_submission(self.jobs, earlier, print_now)
        try:
            return self._create(job_id, spec, meta, upload, dataset)
        except BaseException:
            if idempotency_key is not None:
                self.jobs.release_idempotency_key(idempotency_key, job_id)
            raise

    def model_of(self, spec: LabelJobSpec) -> tuple[str, ModelMeta]:
        model_id = spec.model_id or self.store.active_model_id()
        if model_id is None:
            raise UnknownModel("no model is active: name one in config.model_id", "no active model")
        if not self.store.has_model(model_id):
            raise UnknownModel(f"model {model_id!r} not found", "not found")
        try:
            return model_id, ModelMeta.read(self.store.model_dir(model_id))
        except ModelMetaError:
            raise UnknownModel(f"model {model_id!r} is unreadable", "unreadable") from None

    def validate(self, spec: LabelJobSpec, meta: ModelMeta, upload: Upload) -> DatasetSummary:
        columns = DatasetColumns(spec.text_column, spec.text_pair_column, spec.label_column)
        task: Task = "regression" if meta.task == "regression" else "classification"
        try:
            dataset = self.summarize(SummaryRequest(upload.path, upload.filename, columns, task,
                                                    self.settings.max_upload_bytes, require_labels=False))
        except DatasetError as exc:
            raise UploadRejected(upload.field, exc) from None
        if dataset.pair != meta.pair:
            want = "text pairs" if meta.pair else "single texts"
            raise InvalidField(upload.field, f"model {meta.model_id!r} takes {want}; the file has "
                               f"{'pairs' if dataset.pair else 'single texts'}")
        if dataset.labelled and task == "classification":
            unknown = sorted(set(dataset.labels) - set(meta.labels))
            if unknown:
                raise ApiError(422, "label_mismatch", f"{upload.field}: labels {', '.join(map(repr, unknown))} are "
                               f"not among model {meta.model_id!r}'s labels ({', '.join(map(repr, meta.labels))})",
                               [{"field": upload.field, "message": f"unknown labels: {', '.join(unknown)}"}])
        return dataset

    def _create(self, job_id: str, spec: LabelJobSpec, meta: ModelMeta, upload: Upload,
                dataset: DatasetSummary) -> Submitted:
        name = stored_name("input", upload.filename)
        columns = dataset.columns
        data = LabelDataRecord(file=name, uploaded=upload.filename, text_column=columns.text or "text",
                               text_pair_column=columns.text_pair, label_column=columns.label,
                               task="regression" if meta.task == "regression" else "classification",
                               labelled=dataset.labelled, labels=list(dataset.labels), pair=dataset.pair,
                               rows=dataset.count)
        job_dir = self.store.job_dir(job_id)
        keep(upload, job_dir / name)
        record = {"kind": "ssa-label", "config": spec.model_dump(mode="json"), "data": data.model_dump(mode="json")}
        model_id = str(spec.model_id)
        record_and_queue(self.jobs, self.enqueue, job_dir, record,
                         lambda: self.jobs.create(job_id, config=spec, data=data, model_id=model_id), job_id)
        return Submitted(job_id, model_id, QUEUED, created=True)


def fingerprint(spec: LabelJobSpec, upload: Upload) -> str:
    digest = hashlib.sha256(json.dumps(spec.model_dump(), sort_keys=True).encode())
    digest.update(bytes.fromhex(upload.sha256))
    return digest.hexdigest()
