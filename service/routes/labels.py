"""Label jobs: POST /jobs/ssa-label queues one; its records are served by GET /jobs/{id}/labels (service.routes.jobs,
through service.routes.common.label_output), as JSONL (streamed), Parquet, or review tasks (Label Studio, Argilla)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi.responses import JSONResponse

from service.auth import WriteKeyDep
from service.deps import LabelSubmitterDep, SettingsDep, StoreDep, UploadSlotsDep
from service.errors import error_responses
from service.routes.common import check_idempotency_key, job_created
from service.schemas.jobs import JobCreated
from service.submissions.config import parse_label_config
from service.submissions.uploads import stage_upload, staging_folder

router = APIRouter(prefix="/jobs", tags=["jobs"])


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
    check_idempotency_key(idempotency_key)
    spec = parse_label_config(config)
    with slots.slot(), staging_folder(store) as folder:
        upload = stage_upload("data", data.filename, data.file, settings.max_upload_bytes, folder)
        done = submitter.submit(spec, upload, idempotency_key)
    return job_created(done)
