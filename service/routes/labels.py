"""Label jobs: POST /jobs/ssa-label queues one; its records are served by GET /jobs/{id}/labels (service.routes.jobs
hands label jobs to `label_output`), as JSONL (streamed), Parquet, or review tasks (Label Studio, Argilla)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from jobs.label_shards import LABELS_JSONL, LABELS_PARQUET
from jobs.records import SUCCEEDED, Job
from service.deps import LabelSubmitterDep, SettingsDep, StoreDep, UploadSlotsDep, WriteKeyDep
from service.errors import ApiError, error_responses
from service.reviewexport import review_output
from service.schemas.jobs import JobCreated
from service.submissions.config import parse_label_config
from service.submissions.uploads import stage_upload, staging_folder
from ssa_core.runtime.artifacts import ArtifactStore

router = APIRouter(prefix="/jobs", tags=["jobs"])
LabelFormat = Literal["jsonl", "parquet", "label-studio", "argilla"]


@router.post("/ssa-label", status_code=202, response_model=JobCreated,
             responses=error_responses(400, 401, 404, 409, 413, 422, 429, 503))
def submit_label_job(
    _: WriteKeyDep,
    settings: SettingsDep,
    submitter: LabelSubmitterDep,
    slots: UploadSlotsDep,
    store: StoreDep,
    data: Annotated[UploadFile, File(description="rows to label: JSONL, CSV, TSV or Parquet; a label column is "
                                     "optional")],
    config: Annotated[str | None, Form(description="JSON object of label job settings (see LabelJobSpec)")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                  description="a retried submission with the same key returns the "
                                                  "same job")] = None,
) -> JSONResponse:
    """Validate the file like a training upload (422 with row numbers; 413 when too large) and the model (404
    unknown; 422 when the file's labels are not the model's), then queue a label job: one record per input row,
    cut into shards that run on every worker. 202 with the job's id and status URL; 429 + Retry-After while
    SSA_MAX_PARALLEL_UPLOADS submissions are being validated."""
    from service.routes.jobs import IDEMPOTENCY_KEY

    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise ApiError(422, "validation_error", "Idempotency-Key: use 1-200 visible ASCII characters",
                       [{"field": "Idempotency-Key", "message": "use 1-200 visible ASCII characters"}])
    spec = parse_label_config(config)
    with slots.slot(), staging_folder(store) as folder:
        upload = stage_upload("data", data.filename, data.file, settings.max_upload_bytes, folder)
        done = submitter.submit(spec, upload, idempotency_key)
    body = JobCreated(job_id=done.job_id, status_url=f"/jobs/{done.job_id}", status=done.status,
                      model_id=done.model_id, created=done.created)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": body.status_url})


def label_output(job: Job, store: ArtifactStore, fmt: LabelFormat) -> Response:
    """A succeeded label job's records: JSONL streamed, or the Parquet file; 409 while the job has not succeeded
    (nothing half-written is ever served)."""
    if job.status != SUCCEEDED:
        raise ApiError(409, "job_not_done", f"job {job.id!r} is {job.status}: its labels are served once it has "
                       "succeeded", {"status": job.status})
    job_dir = store.job_dir(job.id)
    if fmt == "parquet":
        return FileResponse(job_dir / LABELS_PARQUET, media_type="application/vnd.apache.parquet",
                            filename=f"{job.id}-labels.parquet")
    if fmt == "label-studio" or fmt == "argilla":
        return review_output(job, job_dir / LABELS_JSONL, fmt)
    from service.routes.jobs import stream_files

    return StreamingResponse(stream_files([job_dir / LABELS_JSONL]), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{job.id}-labels.jsonl"'})
