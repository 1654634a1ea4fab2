"""The label job's spec (the `config` a client submits with POST /jobs/ssa-label, stored with the job) and its data
record, and the job kinds. Imported by jobs.records: it imports nothing from it. Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobs.spec import checked_model_id
from ssa_core.labeling.records import DEFAULT_BATCH, DEFAULT_PROBES
from ssa_core.vocabulary import Task

JobKind = Literal["ssa-train", "ssa-label"]
TRAIN_KIND: Final = "ssa-train"
LABEL_KIND: Final = "ssa-label"
DEFAULT_SHARD_ROWS: Final = 2000


class LabelJobSpec(BaseModel):
    """Label job settings. `model_id` None: the active model, resolved and recorded when the job is submitted."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_id: str | None = Field(default=None, description="model to label with (default: the active model)")
    probes_per_row: int = Field(default=DEFAULT_PROBES, ge=0, le=512,
                                description="words probed per row at most (drawn at random beyond that); 0: "
                                "attention only")
    batch_size: int = Field(default=DEFAULT_BATCH, ge=1, le=1024,
                            description="batch budget: inputs (rows and masked copies) per ONNX Runtime run")
    shard_rows: int = Field(default=DEFAULT_SHARD_ROWS, ge=1, le=1_000_000,
                            description="rows per shard: each shard is one Celery task, run by any worker")
    text_column: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="default: text, else sentence1")
    text_pair_column: str | None = Field(default=None, min_length=1, max_length=200,
                                         description="default: text_pair / sentence2 when present")
    label_column: str = Field(default="label", min_length=1, max_length=200,
                              description="gold labels, optional: rows then get flip labels against them")

    @field_validator("model_id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return checked_model_id(value)

    @classmethod
    def from_record(cls, stored: Mapping[str, Any]) -> LabelJobSpec:
        """A spec read back from a job record: keys this version does not know are dropped, not refused."""
        return cls.model_validate({key: value for key, value in stored.items() if key in cls.model_fields})


class LabelDataRecord(BaseModel):
    """The input of a label job as the API validated it, so that the worker reads it back the same way."""

    model_config = ConfigDict(extra="allow")

    file: str = Field(description="stored file name in the job folder")
    uploaded: str = Field(description="the uploaded file's name")
    text_column: str
    text_pair_column: str | None = None
    label_column: str
    task: Task = Field(description="the model's task (gold labels read as such)")
    labelled: bool = Field(description="the file has gold labels")
    labels: list[str] = Field(description="the file's classes (empty without gold labels)")
    pair: bool
    rows: int
