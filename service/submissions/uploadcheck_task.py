"""What a validation process runs, and the typed records that cross to it and back: a SummaryRequest in, a
DatasetSummary or the problems (Rejected) out. Imports nothing of the API (fastapi, the model runtime), so that each
validation process stays small."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from ssa_core.config import Task
from ssa_core.data.datasets import DatasetColumns, DatasetError, DatasetSummary, Problem, summarize_dataset_file
from ssa_core.data.rationales import ReviewedColumns, write_label_studio_as_jsonl


@dataclass(frozen=True)
class SummaryRequest:
    """One staged upload to validate: where it is, its uploaded name (the only name problems show), the columns and
    task asked for, the size limit, and whether labels are required."""

    path: Path
    filename: str
    columns: DatasetColumns
    task: Task | None
    max_bytes: int
    require_labels: bool = True
    label_studio: Path | None = None  # a Label Studio export: converted into `path` (JSONL) first
    label_studio_name: str = ""  # its uploaded name (conversion problems show it)


@dataclass(frozen=True)
class Rejected:
    """The problems that failed the upload (a DatasetError's, which does not pickle with its source)."""

    problems: list[Problem]
    source: str | None


def summarize(request: SummaryRequest) -> DatasetSummary | Rejected:
    """Validate one upload (runs in a pool process)."""
    try:
        if request.label_studio is not None:
            columns = request.columns
            write_label_studio_as_jsonl(request.label_studio, request.path, request.label_studio_name,
                                        ReviewedColumns(text=columns.text or "text",
                                                        text_pair=columns.text_pair or "text_pair",
                                                        label=columns.label))
        return summarize_dataset_file(request.path, request.filename, columns=request.columns, task=request.task,
                                      max_bytes=request.max_bytes, require_labels=request.require_labels)
    except DatasetError as exc:
        return Rejected(exc.problems, exc.source)


def lower_priority(niceness: int) -> None:
    """Run behind the API: `niceness` steps more. Where niceness cannot go that far (it stops at 19, e.g. an API
    started with `nice -n 19`), on Linux the idle scheduling class instead, which still ranks below the API."""
    before = os.nice(0)
    if os.nice(niceness) - before < niceness and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):  # not allowed here: niceness alone
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
