"""Label records as files: JSONL (one `LabelRecord` a line) and Parquet (the same records, one row each), written
streaming and atomically: a file appears under its name only once it is complete. Torch-free.

In Parquet, `label` and `prediction` are strings (a regression value as its decimal text) and `scores` a map."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ssa_core.labeling.records import LabelRecord

PARQUET_BATCH = 2000  # rows per Parquet row group
CONVERT_BATCH = 250  # rows turned from Python records into Arrow data at once


def _span_type() -> Any:
    import pyarrow as pa

    return pa.struct([("text", pa.string()), ("start", pa.int32()), ("end", pa.int32()), ("segment", pa.int8()),
                      ("attention", pa.float64()), ("importance", pa.float64()), ("probe", pa.float64()),
                      ("flip", pa.int8())])


def parquet_schema() -> Any:
    import pyarrow as pa

    span = pa.list_(_span_type())
    return pa.schema([("index", pa.int64()), ("row", pa.int64()), ("text", pa.string()), ("text_pair", pa.string()),
                      ("label", pa.string()), ("prediction", pa.string()), ("score", pa.float64()),
                      ("scores", pa.map_(pa.string(), pa.float64())), ("correct", pa.bool_()),
                      ("truncated", pa.bool_()), ("probed_words", pa.int32()), ("tokens", span), ("words", span)])


def _text(value: str | float | None) -> str | None:
    return None if value is None else str(value)


def parquet_row(record: LabelRecord) -> dict[str, Any]:
    values = record.model_dump()
    values["label"], values["prediction"] = _text(record.label), _text(record.prediction)
    values["scores"] = list(record.scores.items())
    return values


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed onto it when the block ends without an error (removed otherwise)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_jsonl_lines(records: Iterable[LabelRecord], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(record.model_dump_json())
        out.write("\n")
        count += 1
    return count


def read_jsonl(path: Path) -> Iterator[LabelRecord]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield LabelRecord.model_validate_json(line)


def write_parquet(records: Iterable[LabelRecord], path: Path) -> int:
    """Write `records` to `path` (atomically) in row groups of PARQUET_BATCH; the number written.

    Records become Arrow data CONVERT_BATCH at a time, so that only that many rows are ever Python dicts at once (a
    row group's worth of them held about 150 MB more at the peak, which the allocators then kept)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    count = 0
    with atomic_path(path) as temporary, pq.ParquetWriter(str(temporary), schema) as writer:
        group: list[Any] = []  # Arrow record batches of the row group being built
        rows: list[dict[str, Any]] = []
        for record in records:
            rows.append(parquet_row(record))
            if len(rows) >= CONVERT_BATCH:
                group.append(pa.RecordBatch.from_pylist(rows, schema=schema))
                rows = []
                if sum(batch.num_rows for batch in group) >= PARQUET_BATCH:
                    count += _write_group(writer, group, schema)
                    group = []
        if rows:
            group.append(pa.RecordBatch.from_pylist(rows, schema=schema))
        if group or count == 0:
            count += _write_group(writer, group, schema)
    return count


def _write_group(writer: Any, batches: list[Any], schema: Any) -> int:
    import pyarrow as pa

    table = pa.Table.from_batches(batches, schema=schema)
    writer.write_table(table, row_group_size=max(1, table.num_rows))
    return int(table.num_rows)


def release_free_memory() -> None:
    """Hand memory that is free again back to the system: Arrow's pool's unused pages and, on glibc, the heap's free
    pages (malloc_trim). For a long-lived worker process after a step that briefly needed much more than usual (the
    label merge), so that its resident memory returns to what it needs between jobs."""
    import gc
    import sys

    gc.collect()
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    _malloc_trim()


def _malloc_trim() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return
    if trim is not None:  # glibc only (musl and macOS have none)
        trim(0)


def concat_jsonl(parts: Iterable[Path], path: Path, chunk: int = 1 << 20) -> None:
    """The files `parts`, in order, as one file at `path` (atomically)."""
    with atomic_path(path) as temporary, temporary.open("wb") as out:
        for part in parts:
            with part.open("rb") as handle:
                while block := handle.read(chunk):
                    out.write(block)


def records_of(parts: Iterable[Path]) -> Iterator[LabelRecord]:
    for part in parts:
        yield from read_jsonl(part)
