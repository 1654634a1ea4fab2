"""The typed records of a training job as they cross processes (API -> Redis -> worker -> Redis -> API): job
statuses, the deploy policy, the data record, iteration summaries, the result and the job itself.

This is the only place that spells a job status or a deploy value; other modules use the names below."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from jobs.labelspec import TRAIN_KIND, JobKind, LabelDataRecord, LabelJobSpec
from jobs.spec import Deploy, TrainJobSpec
from ssa_core.records import IterationRecord
from ssa_core.vocabulary import Task

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES: tuple[Status, ...] = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})

CancelOutcome = Literal["cancelled", "requested", "ended", "missing"]
DeleteOutcome = Literal["deleted", "active", "missing"]
ClaimOutcome = Literal["claimed", "leased", "terminal", "cancelled", "exhausted", "missing"]


class Record(BaseModel):
    """A JSON record stored in a job's Redis hash: unknown keys (from newer writers) are kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def to_json_value(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class FilePair(Record):
    train: str
    dev: str | None = None


class Columns(Record):
    """The dataset columns the API resolved (the text column may be auto-detected, hence None)."""

    text: str | None = None
    text_pair: str | None = None
    label: str = "label"


class SplitRecord(Record):
    """The dev split the API drew from the train file when no dev file was uploaded."""

    from_: str = Field(default="train", alias="from")
    dev_fraction: float
    seed: int
    dev_rows: list[int]


class DataRecord(Record):
    """What the worker needs to read a job's data back exactly as the API validated it (see worker.jobdata)."""

    files: FilePair
    uploaded: FilePair
    columns: Columns
    task: Task
    labels: list[str]
    pair: bool
    train_examples: int
    dev_examples: int
    split: SplitRecord | None = None


class IterationSummary(Record):
    """What GET /jobs/{id} shows of one finished iteration: dev metric, losses, kept-copy rate, weak-label stats."""

    iteration: int
    metric: str
    dev_metric: float | None
    dev: dict[str, float]
    train_loss: float | None = None
    cls_loss: float | None = None
    tok_loss: float | None = None
    share: float | None = None
    kept_rate: float | None = None
    label_stats: dict[str, Any] | None = None
    seconds: float | None = None


LABEL_STAT_KEYS = ("selected", "probed_examples", "masked_copies", "kept_copies", "zero_label_share",
                   "labelled_tokens_per_example", "masked_token_share", "original_accuracy")


def iteration_summary(record: IterationRecord | Mapping[str, Any], metric: str) -> IterationSummary:
    """The summary of one training-history record (ssa_core's `Trainer` history entry; its JSON is read too)."""
    record = IterationRecord.of(record)
    probe = record.probe.to_dict() if record.probe is not None else {}
    return IterationSummary(
        iteration=record.iteration, metric=metric, dev_metric=record.dev.get(metric), dev=dict(record.dev),
        train_loss=record.train_loss, cls_loss=record.cls_loss, tok_loss=record.tok_loss,
        share=record.share, kept_rate=probe.get("kept_rate"),
        label_stats={key: probe[key] for key in LABEL_STAT_KEYS if key in probe} or None,
        seconds=record.seconds)


GateCheckName = Literal["labels", "loads", "explanations", "score"]
GateOutcome = Literal["passed", "failed", "skipped"]
GATE_CHECKS: tuple[GateCheckName, ...] = ("labels", "loads", "explanations", "score")


class GateCheck(Record):
    """One check of the deploy gate (jobs.deploy), in the order they run: `labels` (task, label set and input kind
    equal the active model's), `loads` (loads and predicts through the ONNX runtime), `explanations` (attention not
    uniform), `score` (both models scored on the same data)."""

    name: GateCheckName
    outcome: GateOutcome
    detail: str


class GateScores(Record):
    """Both models scored by the ONNX runtime on the same data: the new job's dev set."""

    metric: str
    examples: int = Field(description="dev examples both models were scored on")
    new: float = Field(description="the new model's score")
    active: float | None = Field(description="the active model's score (None: it could not be scored)")


class DeployReport(Record):
    """What the deploy gate decided for a job's new model, each check and both scores."""

    policy: Deploy
    deployed: bool
    reason: str
    active_before: str | None = Field(description="the active model when the gate ran")
    checks: list[GateCheck] = Field(default_factory=list)
    scores: GateScores | None = None


class Int8Outcome(Record):
    """What became of a job's `quantize: int8`: the variant written, or refused with the measured agreement."""

    written: bool
    agreement: float = Field(description="share of the dev set on which int8 predicted fp32's label")
    checked_inputs: int
    min_agreement: float
    reason: str | None = Field(default=None, description="why it was not written")


class JobResult(Record):
    """The model a succeeded job published and its dev score."""

    model_id: str
    metric: str
    dev_metric: float | None
    best_iteration: int
    parity_max_abs_diff: dict[str, float] = Field(default_factory=dict,
                                                  description="ONNX vs PyTorch parity check, per output")
    deploy_gate: DeployReport | None = Field(default=None, description="the deploy gate's decision, checks and "
                                             "scores (jobs finished before the gate existed have none)")
    int8: Int8Outcome | None = Field(default=None, description="quantize int8: the variant's agreement with fp32 on "
                                     "the dev set, and whether it was written")


@dataclass
class Job:
    """One job as stored in Redis (jobs.store) and shown by the API: a training job (`kind` ssa-train: a
    TrainJobSpec and a DataRecord) or a label job (ssa-label: a LabelJobSpec and a LabelDataRecord)."""

    id: str
    status: Status
    stage: str = QUEUED
    progress: float = 0.0
    eta_s: float | None = None
    iteration: int | None = None
    step: int | None = None
    total_steps: int | None = None
    created_at: float = 0.0
    updated_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    worker: str | None = None
    attempts: int = 0
    error: str | None = None
    model_id: str | None = None
    cancel_requested: bool = False
    deployed: bool | None = None
    deploy_note: str | None = None
    config: TrainJobSpec | LabelJobSpec = field(default_factory=TrainJobSpec)
    data: DataRecord | LabelDataRecord | None = None
    iterations: list[IterationSummary] = field(default_factory=list)
    result: JobResult | None = None
    kind: JobKind = TRAIN_KIND

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (records as dicts)."""
        values = asdict(self)
        values["config"] = self.config.model_dump(mode="json")
        values["data"] = self.data.model_dump(mode="json", by_alias=True) if self.data is not None else None
        values["iterations"] = [item.to_json_value() for item in self.iterations]
        values["result"] = self.result.to_json_value() if self.result is not None else None
        return values


@dataclass(frozen=True)
class Claim:
    """What `JobStore.claim` found: `claimed` (run it, `attempt` set), `leased` (another worker holds it:
    `detail` names the holder), `terminal`, `cancelled` (it was, now it is), `exhausted`, or `missing`."""

    outcome: ClaimOutcome
    detail: str = ""
    attempt: int = 0


class CancelResult(NamedTuple):
    """What `JobStore.request_cancel` did: `cancelled` (it was queued: it never starts), `requested` (running: it
    stops at its next step), `ended` (it had ended already, with `status`), or `missing`."""

    outcome: CancelOutcome
    status: str

    @property
    def accepted(self) -> bool:
        return self.outcome in ("cancelled", "requested")


class DeleteResult(NamedTuple):
    """What `JobStore.delete_ended` did: `deleted` (it had ended with `status`), `active` (queued or running: kept),
    or `missing`."""

    outcome: DeleteOutcome
    status: str


@dataclass(frozen=True)
class IdempotencyBinding:
    """An Idempotency-Key's earlier binding: the job it made and the fingerprint of that submission."""

    job_id: str
    fingerprint: str
