"""How a label job is cut into shards, and the file names of its output in the job folder. Torch-free."""

from __future__ import annotations

from typing import Final

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


def shard_ranges(rows: int, shard_rows: int) -> list[ShardRange]:
    """Consecutive ranges of at most `shard_rows` rows covering [0, rows)."""
    return [ShardRange(shard=k, start=start, end=min(start + shard_rows, rows))
            for k, start in enumerate(range(0, rows, shard_rows))]


def shard_file(shard: int) -> str:
    return f"shard-{shard:05d}.jsonl"
