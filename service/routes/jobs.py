"""Training jobs: submit (validated before queueing), list, inspect, cancel, delete (ended jobs), weak labels and log.

Jobs run on Celery workers; their state lives in Redis (jobs.store) and their files in the job folder."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from jobs.folder import LABEL_FILE, LABELS_DIR, LOG_FILE
from jobs.labelspec import LABEL_KIND
from jobs.records import Job
from jobs.removal import remove_job
from jobs.store import JobStore
from service.auth import LabelsKeyDep, LogsKeyDep, ReadKeyDep, WriteKeyDep
from service.deps import JobsDep, SettingsDep, StoreDep, SubmitterDep, UploadSlotsDep
from service.errors import ApiError, error_responses
from service.routes.common import LabelFormat, check_idempotency_key, job_created, label_output, stream_files
from service.schemas.jobs import JobCreated, JobInfo, JobPage, JobStatus, job_info
from service.submissions.config import parse_config
from service.submissions.reviewupload import as_train_rows
from service.submissions.uploads import stage_upload, staging_folder
from ssa_core.runtime.artifacts import ID_MAX_LENGTH, SAFE_ID_PATTERN, validate_id

router = APIRouter(prefix="/jobs", tags=["jobs"])
MAX_OFFSET = 1_000_000  # far beyond any store's job count; larger values (3.4e23) overflow Redis' int64 ranges
MAX_ITERATION = 10_000


JobId = Annotated[str, Path(pattern=SAFE_ID_PATTERN, max_length=ID_MAX_LENGTH, description="A job id",
                            examples=["5f0c3e0a9d6b4c1e8a7f2b3c4d5e6f70"])]


def find_job(jobs: JobStore, job_id: str) -> Job:
    job = jobs.get(validate_id(job_id, "job id"))
    if job is None:
        raise ApiError(404, "not_found", f"job {job_id!r} not found")
    return job


@router.post("/ssa-train", status_code=202, response_model=JobCreated,
             responses=error_responses(400, 401, 409, 413, 422, 429, 503))
def submit_job(
    _: WriteKeyDep,
    settings: SettingsDep,
    submitter: SubmitterDep,
    slots: UploadSlotsDep,
    store: StoreDep,
    train: Annotated[UploadFile, File(description="training data: JSONL, CSV, TSV or Parquet; or a Label Studio "
                                      "export (.json) whose annotated spans train as reviewed rationales")],
    dev: Annotated[UploadFile | None, File(description="dev data (default: a stratified split of train)")] = None,
    config: Annotated[str | None, Form(description="JSON object of job settings (see TrainJobConfig)")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                  description="a retried submission with the same key returns the "
                                                  "same job")] = None,
) -> JSONResponse:
    """Validate the datasets and the config (422 with row numbers and fields; 413 when too large), then queue an
    SSA training job. 202 with the job's id and status URL; 429 + Retry-After while SSA_MAX_PARALLEL_UPLOADS
    submissions are being validated."""
    check_idempotency_key(idempotency_key)
    parsed = parse_config(config)
    limit = settings.max_upload_bytes
    with slots.slot(), staging_folder(store) as folder:
        train_upload = as_train_rows(stage_upload("train", train.filename, train.file, limit, folder,
                                                  label_studio=True))
        dev_upload = stage_upload("dev", dev.filename, dev.file, limit, folder) \
            if dev is not None and dev.filename else None
        done = submitter.submit(parsed, train_upload, dev_upload, idempotency_key)
    return job_created(done)


@router.get("", response_model=JobPage, responses=error_responses(401, 503))
def list_jobs(
    _: ReadKeyDep,
    jobs: JobsDep,
    store: StoreDep,
    status: Annotated[JobStatus | None, Query(description="only jobs with this status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobPage:
    """Jobs, newest first, in pages; `disk_bytes`: the size of each job's files."""
    found, total = jobs.list_jobs(status=status, offset=offset, limit=limit)
    return JobPage(jobs=[job_info(job, disk_bytes=store.job_bytes(job.id)) for job in found], total=total,
                   limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobInfo, responses=error_responses(401, 404, 422, 503))
def get_job(_: ReadKeyDep, jobs: JobsDep, store: StoreDep, job_id: JobId) -> JobInfo:
    """Status, stage, progress, ETA, per-iteration metrics, attempts, error and the resulting model."""
    job = find_job(jobs, job_id)
    return job_info(job, jobs.events(job.id), full=True, disk_bytes=store.job_bytes(job.id))


@router.delete("/{job_id}", status_code=204, response_class=Response,
               responses=error_responses(401, 404, 409, 422, 503))
def delete_job(_: WriteKeyDep, jobs: JobsDep, store: StoreDep, job_id: JobId) -> Response:
    """Remove an ended job (succeeded, failed or cancelled): its record, events and files (the job folder: uploads,
    log, weak labels). A queued or running job is refused with 409 `job_active` (cancel it first). A model the job
    published stays in the store (DELETE /models/{id} removes it)."""
    result = remove_job(jobs, store, validate_id(job_id, "job id"))
    if result.outcome == "missing":
        raise ApiError(404, "not_found", f"job {job_id!r} not found")
    if result.outcome == "active":
        raise ApiError(409, "job_active", f"job {job_id!r} is {result.status}: only ended jobs (succeeded, failed, "
                       "cancelled) can be deleted; cancel it first", {"status": result.status})
    return Response(status_code=204)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobInfo,
             responses=error_responses(401, 404, 409, 422, 503))
def cancel_job(_: WriteKeyDep, jobs: JobsDep, job_id: JobId) -> JSONResponse:
    """A queued job is cancelled at once and never starts; a running one stops at its next training step."""
    job = find_job(jobs, job_id)
    cancel = jobs.request_cancel(job.id)
    if not cancel.accepted:
        raise ApiError(409, "job_finished", f"job {job_id!r} has already ended ({cancel.status})",
                       {"status": cancel.status})
    jobs.add_event(job.id, "cancel-requested" if cancel.outcome == "requested" else cancel.outcome)
    updated = find_job(jobs, job.id)
    return JSONResponse(job_info(updated).model_dump(mode="json", by_alias=True), status_code=202)


@router.get("/{job_id}/labels", response_model=None,
            responses={200: {"content": {"application/x-ndjson": {}, "application/vnd.apache.parquet": {},
                                         "application/json": {}},
                             "description": "training job: weak token labels; label job: one record per input "
                             "row (LabelRecord), one JSON object a line or Parquet"},
                       **error_responses(401, 404, 409, 422, 503)})
def job_labels(
    _: LabelsKeyDep,
    jobs: JobsDep,
    store: StoreDep,
    job_id: JobId,
    iteration: Annotated[int | None, Query(ge=0, le=MAX_ITERATION,
                                           description="one iteration (default: all of them)")] = None,
    format: Annotated[LabelFormat, Query(description="label jobs: jsonl (streamed), parquet, "
                                                "or review tasks: label-studio, argilla (docs/API.md)")] = "jsonl",
) -> Response:
    """A training job: the weak token labels its probing produced, as JSONL (streamed): every probed copy of
    iteration k >= 1 with its wordpieces, character offsets and 0/1 labels, `selected` when it was trained on.
    A label job (once succeeded; 409 before): one record per input row in input order, as JSONL or Parquet, or as
    review tasks with rationale spans: Label Studio tasks (a JSON array) or Argilla settings and records."""
    job = find_job(jobs, job_id)
    if job.kind == LABEL_KIND:
        return label_output(job, store, format)
    files = label_files(store.job_dir(job.id) / LABELS_DIR)
    if iteration is not None:
        if iteration not in files:
            available = ", ".join(map(str, files)) or "none yet"
            raise ApiError(404, "not_found", f"job {job_id!r} has no labels for iteration {iteration} "
                           f"(iterations with labels: {available})", {"available": list(files)})
        files = {iteration: files[iteration]}
    elif not files:
        raise ApiError(404, "not_found", f"job {job_id!r} has no weak labels yet (they are written from iteration 1)")
    name = f"{job.id}-labels{'' if iteration is None else f'-iter{iteration}'}.jsonl"
    return StreamingResponse(stream_files(list(files.values())), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{job_id}/log", responses={200: {"content": {"text/plain": {}}, "description": "the job's log"},
                                        **error_responses(401, 404, 422, 503)})
def job_log(_: LogsKeyDep, jobs: JobsDep, store: StoreDep, job_id: JobId) -> StreamingResponse:
    """The job's log (every attempt: stages, per-iteration metrics, errors; paths relative to the job folder, the
    tracebacks only in the worker's own log)."""
    job = find_job(jobs, job_id)
    path = store.job_dir(job.id) / LOG_FILE
    return StreamingResponse(stream_files([path] if path.is_file() else []), media_type="text/plain; charset=utf-8")


def label_files(folder: FilePath) -> dict[int, FilePath]:
    """iter<k>.jsonl files of a labels folder by k, in order."""
    if not folder.is_dir():
        return {}
    found = {int(m.group(1)): path for path in folder.iterdir() if (m := LABEL_FILE.fullmatch(path.name))}
    return dict(sorted(found.items()))
