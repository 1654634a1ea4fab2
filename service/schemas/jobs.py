"""Response bodies of the /jobs endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobs.labelspec import TRAIN_KIND, JobKind, LabelDataRecord, LabelJobSpec
from jobs.records import DataRecord, Job, JobResult, SplitRecord
from jobs.records import Status as JobStatus
from jobs.spec import TrainJobSpec

__all__ = ["DataInfo", "IterationInfo", "JobCreated", "JobInfo", "JobPage", "JobStatus", "SplitInfo", "job_info"]


class JobCreated(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    job_id: str = Field(examples=["5f0c3e0a9d6b4c1e8a7f2b3c4d5e6f70"])
    status_url: str = Field(examples=["/jobs/5f0c3e0a9d6b4c1e8a7f2b3c4d5e6f70"])
    status: JobStatus
    model_id: str = Field(description="id the model gets when the job succeeds")
    created: bool = Field(description="false: an earlier submission with the same Idempotency-Key made this job")


class IterationInfo(BaseModel):
    """One finished SSA iteration (0-based)."""

    iteration: int
    metric: str
    dev_metric: float | None
    dev: dict[str, float]
    train_loss: float | None = None
    cls_loss: float | None = None
    tok_loss: float | None = None
    share: float | None = Field(None, description="share of weakly labelled copies in this iteration's training set")
    kept_rate: float | None = Field(None, description="kept masked copies / probed copies (None in iteration 0)")
    label_stats: dict[str, Any] | None = None
    seconds: float | None = None


class SplitInfo(SplitRecord):
    """The dev split drawn from the train file: `dev_rows` lists the rows in GET /jobs/{id}, and counts them in
    job lists."""

    dev_rows: list[int] | int  # type: ignore[assignment]


class DataInfo(DataRecord):
    """The job's data as the API validated it: stored file names, uploaded names, columns, task, labels, sizes."""

    split: SplitInfo | None = None


class JobInfo(BaseModel):
    """A training job (`kind` ssa-train) or a label job (ssa-label: `config` is a LabelJobSpec, `data` a
    LabelDataRecord, `model_id` the model it labels with, `step`/`total_steps` count its shards). Times are Unix
    seconds; `progress` is 0-1; `eta_s` is seconds left (while running)."""

    model_config = ConfigDict(protected_namespaces=())

    id: str
    status: JobStatus
    stage: str = Field(examples=["training"])
    progress: float
    eta_s: float | None
    iteration: int | None = Field(description="current iteration (0-based)")
    step: int | None
    total_steps: int | None
    created_at: float
    updated_at: float | None
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker: str | None
    attempts: int
    error: str | None
    model_id: str | None
    cancel_requested: bool
    deployed: bool | None
    deploy_note: str | None
    config: TrainJobSpec | LabelJobSpec
    data: DataInfo | LabelDataRecord | None = Field(description="dataset summary; `split` lists the dev rows when "
                                                    "no dev file was given")
    iterations: list[IterationInfo]
    result: JobResult | None
    kind: JobKind = Field(TRAIN_KIND, description="ssa-train or ssa-label")
    events: list[dict[str, Any]] | None = Field(None, description="deliveries, deferrals and attempts (GET "
                                                "/jobs/{id} only)")
    disk_bytes: int | None = Field(None, ge=0, description="bytes of the job's files on disk (its folder: uploads, "
                                   "log, weak labels, checkpoints while running); null where not measured",
                                   examples=[1048576])


class JobPage(BaseModel):
    jobs: list[JobInfo]
    total: int
    limit: int
    offset: int


def job_info(job: Job, events: list[dict[str, Any]] | None = None, *, full: bool = False,
             disk_bytes: int | None = None) -> JobInfo:
    """A stored job as the API shows it; unless `full`, the split's dev rows are only counted."""
    values = job.to_dict()
    split = job.data.split if isinstance(job.data, DataRecord) else None
    if split is not None and not full:
        values["data"]["split"]["dev_rows"] = len(split.dev_rows)
    return JobInfo(**values, events=events, disk_bytes=disk_bytes)
