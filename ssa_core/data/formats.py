"""Parse JSONL, CSV, TSV and Parquet bytes into raw rows, and the problem vocabulary of dataset validation.

Nothing here interprets columns or labels (that is `ssa_core.data.datasets`); a reader only reports what keeps
a row from being read at all (invalid JSON, a wrong number of CSV fields, an unreadable Parquet file).
Bytes that are not valid UTF-8 are decoded with `surrogateescape`, so they survive as lone surrogates
that the validator reports per row and column instead of the whole file failing to decode.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Protocol

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

    def has_rows(self) -> bool:
        return bool(self.rows)

    def iter_rows(self) -> Iterator[RawRow]:
        return iter(self.rows)


class Table(Protocol):
    """Rows to validate, read as often as needed: a RawTable held in memory, or a TableFile read from disk on each
    pass. `problems` holds what kept rows from being read (complete once a pass over `iter_rows()` has ended)."""

    typed: bool
    problems: list[Problem]

    def column_names(self) -> list[str]: ...

    def has_rows(self) -> bool: ...

    def iter_rows(self) -> Iterator[RawRow]: ...


class TableFile:
    """A file on disk read row by row on each pass (never held whole, nor all its rows): the same rows, row numbers
    and problems as `read_table` of its bytes. Parquet is read one row group at a time."""

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in ("jsonl", "csv", "tsv", "parquet"):
            raise ValueError(f"unknown format {fmt!r}")
        self.path, self.fmt = path, fmt
        self.typed = fmt in ("jsonl", "parquet")
        self.problems: list[Problem] = []
        self._names: list[str] | None = None

    def column_names(self) -> list[str]:
        if self._names is None:
            if self.fmt in ("csv", "tsv", "parquet"):
                with self._open() as stream:
                    self._names = self._header(stream, [])
            else:
                self._names = list(dict.fromkeys(key for row in self.iter_rows() for key in row.values))
        return self._names

    def has_rows(self) -> bool:
        rows = self.iter_rows()
        try:
            return next(rows, None) is not None
        finally:
            rows.close()  # type: ignore[attr-defined]

    def iter_rows(self) -> Iterator[RawRow]:
        problems: list[Problem] = []
        self.problems = problems
        with self._open() as stream:
            if self.fmt == "jsonl":
                yield from _jsonl_rows(stream, problems)
            elif self.fmt == "parquet":
                yield from _parquet_rows(stream, problems)
            else:
                header = self._header(stream, problems)
                if header and not problems:
                    yield from _delimited_rows(stream.reader, header, self.fmt.upper(), problems)

    def iter_range(self, start: int, end: int) -> Iterator[RawRow]:
        """Rows [start, end) (0-based, counted as `iter_rows` yields them) of a file that passed validation, read
        only up to the range's end: rows before `start` are not kept (JSONL: lines only counted, not parsed;
        CSV/TSV: split and dropped) and Parquet reads only the row groups that overlap the range. Problems (a file that
        changed since its validation) land in `problems` as with `iter_rows`."""
        problems: list[Problem] = []
        self.problems = problems
        if end <= start:
            return
        with self._open() as stream:
            if self.fmt == "jsonl":
                yield from _jsonl_range(stream, start, end, problems)
            elif self.fmt == "parquet":
                yield from _parquet_range(stream, start, end, problems)
            else:
                header = self._header(stream, problems)
                if header and not problems:
                    rows = _delimited_rows(stream.reader, header, self.fmt.upper(), problems)
                    yield from itertools.islice(rows, start, end)

    def _open(self) -> Any:
        if self.fmt == "parquet":  # a file object, not the path: arrow's messages then never name the path
            return self.path.open("rb")
        # newline="\n": lines end at "\n" only, as in _read_jsonl; CSV wants newline="" (the csv module's own rule)
        text = self.path.open(encoding="utf-8-sig", errors="surrogateescape",
                              newline="\n" if self.fmt == "jsonl" else "")
        return text if self.fmt == "jsonl" else _Delimited(text, "," if self.fmt == "csv" else "\t")

    def _header(self, stream: Any, problems: list[Problem]) -> list[str]:
        if self.fmt == "parquet":
            return _parquet_names(stream, problems)
        return _delimited_header(stream.reader, self.fmt.upper(), problems)


class _Delimited:
    """A text file and its csv reader, closed together."""

    def __init__(self, text: Any, delimiter: str) -> None:
        self.text, self.reader = text, _csv_reader(text, delimiter)

    def __enter__(self) -> _Delimited:
        return self

    def __exit__(self, *exc: object) -> None:
        self.text.close()


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
    table = TableFile(path, fmt)
    rows = list(table.iter_rows())
    header = None if fmt == "jsonl" else table.column_names()
    return RawTable(header=header, rows=rows, typed=table.typed, problems=table.problems)


def decode(data: bytes) -> str:
    """UTF-8 (an optional BOM dropped); invalid bytes become lone surrogates for the validator to report."""
    return data.decode("utf-8-sig", errors="surrogateescape")


def _read_jsonl(data: bytes) -> RawTable:
    return _jsonl_lines(decode(data).split("\n"))


def _jsonl_lines(lines: Iterable[str]) -> RawTable:
    problems: list[Problem] = []
    rows = list(_jsonl_rows(lines, problems))
    return RawTable(header=None, rows=rows, typed=True, problems=problems)


def _jsonl_rows(lines: Iterable[str], problems: list[Problem]) -> Iterator[RawRow]:
    first = True
    for number, ending in enumerate(lines, start=1):
        line = ending.removesuffix("\n")  # a file's lines keep their "\n"; split("\n") drops it
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):
            message = "expected JSON lines (one object per line), found a JSON array"
            problems.append(Problem(None, None, message))
            return
        first = False
        row = _parse_json_line(problems, number, line)
        if row is not None:
            yield row


def _jsonl_range(lines: Iterable[str], start: int, end: int, problems: list[Problem]) -> Iterator[RawRow]:
    """Rows [start, end) of JSON lines (blank lines are no rows, as in `_jsonl_rows`); lines before `start` are
    counted, not parsed, and reading stops at `end`."""
    index = 0
    for number, ending in enumerate(lines, start=1):
        line = ending.removesuffix("\n")
        if not line.strip():
            continue
        if index >= start:
            row = _parse_json_line(problems, number, line)
            if row is not None:
                yield row
        index += 1
        if index >= end:
            return


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


def _parse_json_line(problems: list[Problem], number: int, line: str) -> RawRow | None:
    try:
        value = json.loads(line, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        problems.append(Problem(number, exc.key, "the object names this key more than once"))
        return None
    except json.JSONDecodeError as exc:
        problems.append(Problem(number, None, f"invalid JSON: {exc.msg} (character {exc.colno})"))
        return None
    except (ValueError, RecursionError) as exc:  # e.g. an integer with too many digits, deep nesting
        problems.append(Problem(number, None, f"invalid JSON: {exc}"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(number, None, f"expected a JSON object, found {describe(value)}"))
        return None
    return RawRow(number, value)


def _read_delimited(data: bytes, delimiter: str, name: str) -> RawTable:
    """CSV quotes fields the usual way; TSV is one record per line, no quoting (as GLUE-style files are)."""
    return _delimited_lines(io.StringIO(decode(data), newline=""), delimiter, name)


def _delimited_lines(stream: Iterable[str], delimiter: str, name: str) -> RawTable:
    reader = _csv_reader(stream, delimiter)
    problems: list[Problem] = []
    header = _delimited_header(reader, name, problems)
    rows = list(_delimited_rows(reader, header, name, problems)) if header and not problems else []
    return RawTable(header=header, rows=rows, typed=False, problems=problems)


def _csv_reader(stream: Iterable[str], delimiter: str) -> Any:
    if delimiter == ",":
        return csv.reader(stream, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    return csv.reader(stream, delimiter=delimiter, quoting=csv.QUOTE_NONE)


def _delimited_header(reader: Any, name: str, problems: list[Problem]) -> list[str]:
    """The header (stripped names); [] with a problem when it is unreadable or names a column twice."""
    try:
        header = [column.strip() for column in next((fields for fields in reader if fields), [])]
    except csv.Error as exc:
        problems.append(Problem(None, None, f"unreadable {name}: {exc}"))
        return []
    if duplicates := duplicated(header):
        problems += [Problem(None, column, "the header names this column more than once") for column in duplicates]
    return header


def _delimited_rows(reader: Any, header: list[str], name: str, problems: list[Problem]) -> Iterator[RawRow]:
    number = 0
    try:
        for number, fields in enumerate(reader, start=1):
            if not fields:  # a blank line: counted as a row, holds nothing
                continue
            if len(fields) != len(header):
                problems.append(Problem(number, None, f"{len(fields)} fields, but the header has {len(header)}"))
                continue
            yield RawRow(number, dict(zip(header, fields, strict=True)))
    except csv.Error as exc:
        problems.append(Problem(number + 1, None, f"unreadable {name}: {exc}"))


def _read_parquet(data: bytes) -> RawTable:
    try:
        import pyarrow as pa
    except ImportError:
        pa = None
    problems: list[Problem] = []
    source = data if pa is None else pa.BufferReader(data)
    rows = list(_parquet_rows(source, problems))
    names = [] if problems and not rows else _parquet_names(source, [])
    return RawTable(header=names, rows=rows, typed=True, problems=problems)


def _duplicate_columns(duplicates: list[str]) -> list[Problem]:
    return [Problem(None, name, "the file has more than one column of this name") for name in duplicates]


def _arrow_rows(pa: Any, arrow: Any, names: list[str], before: int) -> Iterator[RawRow]:
    """The rows of an Arrow table or record batch whose first row is row `before + 1` of the file."""
    columns = [_arrow_values(pa, arrow.column(index)) for index in range(arrow.num_columns)]
    for index, values in enumerate(zip(*columns, strict=True)):
        yield RawRow(before + index + 1, dict(zip(names, values, strict=True)))


def _parquet_file(handle: Any, problems: list[Problem]) -> Any:
    """The opened ParquetFile, or None with the problem recorded (pyarrow missing, or not a Parquet file)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        problems.append(Problem(None, None, "Parquet files need pyarrow, which this installation lacks (pip install "
                                "'ssa-service[parquet]'); send JSONL, CSV or TSV instead"))
        return None
    try:
        return pq.ParquetFile(handle)
    except (pa.ArrowException, OSError, ValueError) as exc:
        problems.append(Problem(None, None, f"not a readable Parquet file: {exc}"))
        return None


def _parquet_names(handle: Any, problems: list[Problem]) -> list[str]:
    parquet = _parquet_file(handle, problems)
    return [] if parquet is None else [str(name) for name in parquet.schema_arrow.names]


def _parquet_rows(handle: Any, problems: list[Problem]) -> Iterator[RawRow]:
    """The rows of a Parquet file, one row group in memory at a time."""
    parquet = _parquet_file(handle, problems)
    if parquet is None:
        return
    import pyarrow as pa

    names = [str(name) for name in parquet.schema_arrow.names]
    if duplicates := duplicated(names):
        problems += _duplicate_columns(duplicates)
        return
    before = 0
    try:
        for group in range(parquet.num_row_groups):
            batch = parquet.read_row_group(group)
            yield from _arrow_rows(pa, batch, names, before)
            before += batch.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:
        problems.append(Problem(None, None, f"not a readable Parquet file: {exc}"))


def _parquet_range(handle: Any, start: int, end: int, problems: list[Problem]) -> Iterator[RawRow]:
    """Rows [start, end) of a Parquet file: only the row groups that overlap the range are read, and only the
    range's rows of them become Python values."""
    parquet = _parquet_file(handle, problems)
    if parquet is None:
        return
    import pyarrow as pa

    names = [str(name) for name in parquet.schema_arrow.names]
    before = 0
    try:
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            if before + size > start and before < end:
                lo, hi = max(start - before, 0), min(end - before, size)
                batch = parquet.read_row_group(group).slice(lo, hi - lo)
                yield from _arrow_rows(pa, batch, names, before + lo)
            before += size
            if before >= end:
                return
    except (pa.ArrowException, OSError, ValueError) as exc:
        problems.append(Problem(None, None, f"not a readable Parquet file: {exc}"))


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
