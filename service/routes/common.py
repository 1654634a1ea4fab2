"""What several routes share (no route imports another): the Idempotency-Key check and the 202 of a job submission,
a job's files streamed in chunks, and a label job's records in the formats GET /jobs/{id}/labels serves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from jobs.label_shards import LABELS_JSONL, LABELS_PARQUET
from jobs.records import SUCCEEDED, Job
from service.errors import ApiError
from service.reviewexport import review_output
from service.schemas.jobs import JobCreated
from service.submissions.train import Submitted
from ssa_core.runtime.artifacts import ArtifactStore

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
CHUNK = 1 << 16
LabelFormat = Literal["jsonl", "parquet", "label-studio", "argilla"]


def check_idempotency_key(key: str | None) -> None:
    """422 unless the Idempotency-Key header (when sent) is 1-200 visible ASCII characters."""
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(422, "validation_error", "Idempotency-Key: use 1-200 visible ASCII characters",
                       [{"field": "Idempotency-Key", "message": "use 1-200 visible ASCII characters"}])


def job_created(done: Submitted) -> JSONResponse:
    """The 202 of an accepted submission: the job's id, status URL (also in Location) and status."""
    body = JobCreated(job_id=done.job_id, status_url=f"/jobs/{done.job_id}", status=done.status,
                      model_id=done.model_id, created=done.created)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": body.status_url})


def stream_files(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with path.open("rb") as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")


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
    return StreamingResponse(stream_files([job_dir / LABELS_JSONL]), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{job.id}-labels.jsonl"'})
