"""How a label job is cut into shards, the message of one label shard (`ssa.label-shard`, sent by `ssa.label` to the
worker that runs it), and the file names of its output in the job folder. Torch-free. (ssa_core.labeling is the
labeling itself; this module is only the job's cut and its files.)"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

OUTPUT_DIR: Final = "output"  # shard-<k>.jsonl while the job runs; removed when it ends
LABELS_JSONL: Final = "labels.jsonl"  # the merged records, in input order (appears complete or not at all)
LABELS_PARQUET: Final = "labels.parquet"


class ShardRange(BaseModel):
    """Rows [start, end) of the input (0-based, in input order)."""

    shard: int
    start: int
    end: int

    @property
    def rows(self) -> int:
        return self.end - self.start

    def describe(self) -> str:
        return f"shard {self.shard} (rows {self.start + 1}-{self.end})"


class LabelShardMessage(BaseModel):
    """Label rows `shard` of job `job_id`. Across Celery it travels as the task's two arguments, the job id and the
    shard's fields (`args()` / `from_args`): the message format older workers and queued tasks speak."""

    job_id: str
    shard: ShardRange

    def args(self) -> tuple[str, dict[str, Any]]:
        return self.job_id, self.shard.model_dump()

    @classmethod
    def from_args(cls, job_id: str, shard: dict[str, Any]) -> LabelShardMessage:
        return cls(job_id=job_id, shard=ShardRange.model_validate(shard))


def shard_ranges(rows: int, shard_rows: int) -> list[ShardRange]:
    """Consecutive ranges of at most `shard_rows` rows covering [0, rows)."""
    return [ShardRange(shard=k, start=start, end=min(start + shard_rows, rows))
            for k, start in enumerate(range(0, rows, shard_rows))]


def shard_file(shard: int) -> str:
    return f"shard-{shard:05d}.jsonl"
