"""Parse JSONL, CSV, TSV and Parquet bytes into raw rows, and the problem vocabulary of dataset validation.

Nothing here interprets columns or labels (that is `ssa_core.data`); a reader only reports what keeps
a row from being read at all (invalid JSON, a wrong number of CSV fields, an unreadable Parquet file).
Bytes that are not valid UTF-8 are decoded with `surrogateescape`, so they survive as lone surrogates
that the validator reports per row and column instead of the whole file failing to decode.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

MAX_LISTED = 20
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset; `row` is 1-based in the source file, None for file-level problems."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [f"row {self.row}"] if self.row is not None else []
        where += [f"column {self.column!r}"] if self.column is not None else []
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DatasetError(ValueError):
    """A dataset failed validation; `.problems` lists every problem found, `str()` the first 20 of them."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.problems)

    def __str__(self) -> str:
        count = len(self.problems)
        prefix = f"{self.source}: " if self.source else ""
        lines = [f"{prefix}{count} problem{'' if count == 1 else 's'} in the dataset:"]
        lines += [f"  - {problem}" for problem in self.problems[:MAX_LISTED]]
        if count > MAX_LISTED:
            lines.append(f"  … and {count - MAX_LISTED} more")
        return "\n".join(lines)


@dataclass
class RawRow:
    """One record as read: its 1-based row number and its values by column name."""

    row: int
    values: dict[str, Any]


@dataclass
class RawTable:
    """What a reader produced. `header` is None where every row has its own keys (JSONL)."""

    header: list[str] | None
    rows: list[RawRow]
    typed: bool  # values carry JSON / Arrow types; False: every value is a string (CSV, TSV)
    problems: list[Problem] = field(default_factory=list)

    def column_names(self) -> list[str]:
        """Header names, or for JSONL the union of all keys in first-seen order."""
        if self.header is not None:
            return self.header
        return list(dict.fromkeys(key for row in self.rows for key in row.values))


def format_of(filename: str) -> str | None:
    """The format picked by the file's extension (case-insensitive), or None when it is not supported."""
    return FORMATS.get(PurePath(filename).suffix.lower())


def read_table(data: bytes, fmt: str) -> RawTable:
    """Parse `data` in format `fmt` (a value of FORMATS)."""
    if fmt == "jsonl":
        return _read_jsonl(data)
    if fmt in ("csv", "tsv"):
        return _read_delimited(data, "," if fmt == "csv" else "\t", fmt.upper())
    if fmt == "parquet":
        return _read_parquet(data)
    raise ValueError(f"unknown format {fmt!r}")


def read_table_file(path: Path, fmt: str) -> RawTable:
    """Parse the file at `path` in format `fmt` row by row, as `read_table` parses the same bytes (same rows, row
    numbers and problems), without holding the file's bytes or text whole in memory."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with path.open("rb") as handle:  # a file object, not the path: arrow's messages then never name the path
            return _arrow_table(lambda: pq.read_table(handle))
    # newline="\n": lines end at "\n" only, as in _read_jsonl; CSV wants newline="" (the csv module's own rule)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n" if fmt == "jsonl" else "") as text:
        if fmt == "jsonl":
            return _jsonl_lines(text)
        if fmt in ("csv", "tsv"):
            return _delimited_lines(text, "," if fmt == "csv" else "\t", fmt.upper())
    raise ValueError(f"unknown format {fmt!r}")


def decode(data: bytes) -> str:
    """UTF-8 (an optional BOM dropped); invalid bytes become lone surrogates for the validator to report."""
    return data.decode("utf-8-sig", errors="surrogateescape")


def _read_jsonl(data: bytes) -> RawTable:
    return _jsonl_lines(decode(data).split("\n"))


def _jsonl_lines(lines: Iterable[str]) -> RawTable:
    table = RawTable(header=None, rows=[], typed=True)
    first = True
    for number, ending in enumerate(lines, start=1):
        line = ending.removesuffix("\n")  # a file's lines keep their "\n"; split("\n") drops it
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):
            message = "expected JSON lines (one object per line), found a JSON array"
            table.problems.append(Problem(None, None, message))
            return table
        first = False
        _parse_json_line(table, number, line)
    return table


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: refuse an object that names a key twice (json.loads would keep the last silently)."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise _DuplicateKey(key)
        value[key] = item
    return value


def duplicated(names: Sequence[str]) -> list[str]:
    """Names that occur more than once, each once, in first-seen order."""
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for name in names:
        if name in seen:
            repeated[name] = None
        seen.add(name)
    return list(repeated)


def _parse_json_line(table: RawTable, number: int, line: str) -> None:
    try:
        value = json.loads(line, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        table.problems.append(Problem(number, exc.key, "the object names this key more than once"))
        return
    except json.JSONDecodeError as exc:
        table.problems.append(Problem(number, None, f"invalid JSON: {exc.msg} (character {exc.colno})"))
        return
    except (ValueError, RecursionError) as exc:  # e.g. an integer with too many digits, deep nesting
        table.problems.append(Problem(number, None, f"invalid JSON: {exc}"))
        return
    if not isinstance(value, dict):
        table.problems.append(Problem(number, None, f"expected a JSON object, found {describe(value)}"))
        return
    table.rows.append(RawRow(number, value))


def _read_delimited(data: bytes, delimiter: str, name: str) -> RawTable:
    """CSV quotes fields the usual way; TSV is one record per line, no quoting (as GLUE-style files are)."""
    return _delimited_lines(io.StringIO(decode(data), newline=""), delimiter, name)


def _delimited_lines(stream: Iterable[str], delimiter: str, name: str) -> RawTable:
    if delimiter == ",":
        reader = csv.reader(stream, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    else:
        reader = csv.reader(stream, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    table = RawTable(header=[], rows=[], typed=False)
    number = 0
    try:
        header = next((fields for fields in reader if fields), [])
        table.header = [column.strip() for column in header]
        if duplicates := duplicated(table.header):
            table.problems += [Problem(None, name, "the header names this column more than once")
                               for name in duplicates]
            return table
        for number, fields in enumerate(reader, start=1):
            _add_fields(table, number, fields)
    except csv.Error as exc:
        table.problems.append(
            Problem(number + 1 if table.header else None, None, f"unreadable {name}: {exc}")
        )
    return table


def _add_fields(table: RawTable, number: int, fields: list[str]) -> None:
    header = table.header or []
    if not fields:  # a blank line: counted as a row, holds nothing
        return
    if len(fields) != len(header):
        message = f"{len(fields)} fields, but the header has {len(header)}"
        table.problems.append(Problem(number, None, message))
        return
    table.rows.append(RawRow(number, dict(zip(header, fields, strict=True))))


def _read_parquet(data: bytes) -> RawTable:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        problem = Problem(None, None, "Parquet files need pyarrow, which this installation lacks (pip install "
                          "'ssa-service[parquet]'); send JSONL, CSV or TSV instead")
        return RawTable(header=[], rows=[], typed=True, problems=[problem])

    return _arrow_table(lambda: pq.read_table(pa.BufferReader(data)))


def _arrow_table(load: Callable[[], Any]) -> RawTable:
    import pyarrow as pa

    try:
        arrow = load()
    except (pa.ArrowException, OSError, ValueError) as exc:
        problem = Problem(None, None, f"not a readable Parquet file: {exc}")
        return RawTable(header=[], rows=[], typed=True, problems=[problem])
    names = [str(name) for name in arrow.column_names]
    if duplicates := duplicated(names):
        problems = [Problem(None, name, "the file has more than one column of this name") for name in duplicates]
        return RawTable(header=names, rows=[], typed=True, problems=problems)
    columns = [_arrow_values(pa, arrow.column(index)) for index in range(arrow.num_columns)]
    rows = [
        RawRow(index + 1, dict(zip(names, values, strict=True)))
        for index, values in enumerate(zip(*columns, strict=True))
    ]
    return RawTable(header=names, rows=rows, typed=True)


def _arrow_values(pa: Any, column: Any) -> list[Any]:
    """Python values of one column; strings go through bytes so that invalid UTF-8 reaches the validator."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = column.cast(pa.large_binary())
    values = column.to_pylist()
    return [
        value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value for value in values
    ]


def describe(value: object) -> str:
    """A short name for a value's type, in JSON terms, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, dict):
        return "an object"
    return "an array" if isinstance(value, list) else type(value).__name__
