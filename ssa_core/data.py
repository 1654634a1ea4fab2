"""Load and validate datasets: JSONL, CSV, TSV or Parquet; single texts or text pairs; class or float labels.

Validation reads the whole file and collects every problem with its 1-based row number before raising one
`DatasetError`. Torch-free: only the standard library, and pyarrow (imported lazily) for Parquet.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ssa_core.config import Task
from ssa_core.dataformats import (
    FORMATS,
    DatasetError,
    Problem,
    RawRow,
    RawTable,
    format_of,
    read_table,
    read_table_file,
)
from ssa_core.datavalues import (
    BadValue,
    as_class,
    as_number,
    class_names,
    infer_task,
    label_value,
    text_value,
)
from ssa_core.rationales import RATIONALE_COLUMN, parse_spans

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Dataset",
    "DatasetColumns",
    "DatasetError",
    "Example",
    "Problem",
    "check_splits",
    "head",
    "load_dataset",
    "load_dataset_bytes",
    "stratified_split",
]

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
AUTO_COLUMNS = (("text", "text_pair"), ("sentence1", "sentence2"))


@dataclass(frozen=True)
class DatasetColumns:
    """Which columns hold the text, the optional second text and the label; `text=None`: auto-detect
    (`text`/`text_pair`, else `sentence1`/`sentence2`)."""

    text: str | None = None
    text_pair: str | None = None
    label: str = "label"


@dataclass(frozen=True)
class Example:
    example_id: int  # 0-based position in the file after filtering
    row: int  # 1-based row number in the source file (JSONL line, CSV/TSV data row, Parquet row)
    text: str
    text_pair: str | None
    label: str | float
    rationale: tuple[tuple[int, int], ...] | None = None  # reviewed character spans of `text` (ssa_core.rationales)


@dataclass(frozen=True)
class Dataset:
    examples: list[Example]
    task: Task
    labels: tuple[str, ...]  # sorted class names; () for regression
    source: str
    columns: DatasetColumns  # the columns actually used
    labelled: bool = True  # False: read with require_labels=False from a file without the label column

    @property
    def pair(self) -> bool:
        return self.columns.text_pair is not None


def load_dataset(
    path: str | Path,
    *,
    columns: DatasetColumns | None = None,
    task: Task | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int | None = None,
    require_labels: bool = True,
) -> Dataset:
    """Read and validate the dataset at `path`; the extension picks the format. Raises DatasetError.

    require_labels=False: a file without the label column reads as an unlabelled dataset (`labelled` False, every
    label ""); a file with it is validated as usual."""
    path = Path(path)
    fmt = _format_or_raise(path.name)
    _check_size(path.stat().st_size, max_bytes, str(path))
    return _load(path.read_bytes(), fmt, str(path), columns, task, max_rows, require_labels)


def load_dataset_bytes(
    data: bytes,
    filename: str,
    *,
    columns: DatasetColumns | None = None,
    task: Task | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int | None = None,
    require_labels: bool = True,
) -> Dataset:
    """Like `load_dataset` for a file held in memory (an upload); `filename` picks the format."""
    fmt = _format_or_raise(filename)
    _check_size(len(data), max_bytes, filename)
    return _load(data, fmt, filename, columns, task, max_rows, require_labels)


def load_dataset_file(
    path: Path,
    filename: str,
    *,
    columns: DatasetColumns | None = None,
    task: Task | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int | None = None,
    require_labels: bool = True,
) -> Dataset:
    """Like `load_dataset_bytes` for an upload staged on disk at `path`, read row by row (never whole in memory);
    `filename` (the uploaded name) picks the format and is the only name problems show."""
    fmt = _format_or_raise(filename)
    _check_size(path.stat().st_size, max_bytes, filename)
    if not _has_content(path):
        raise DatasetError([Problem(None, None, "the file is empty")], filename)
    return _from_table(read_table_file(path, fmt), filename, columns, task, max_rows, require_labels)


def _has_content(path: Path) -> bool:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return True
    return False


def _format_or_raise(filename: str) -> str:
    fmt = format_of(filename)
    if fmt is None:
        known = ", ".join(FORMATS)
        raise DatasetError(
            [Problem(None, None, f"unsupported file type (expected one of {known})")], filename
        )
    return fmt


def _check_size(size: int, max_bytes: int, source: str) -> None:
    if size > max_bytes:
        message = f"file too large: {_size(size)}, the limit is {_size(max_bytes)}"
        raise DatasetError([Problem(None, None, message)], source)


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    return f"{count / 1024:.1f} KiB" if count >= 1024 else f"{count} bytes"


def _load(
    data: bytes, fmt: str, source: str, wanted: DatasetColumns | None, task: Task | None, max_rows: int | None,
    require_labels: bool = True,
) -> Dataset:
    if not data.strip():
        raise DatasetError([Problem(None, None, "the file is empty")], source)
    return _from_table(read_table(data, fmt), source, wanted, task, max_rows, require_labels)


def _from_table(
    table: RawTable, source: str, wanted: DatasetColumns | None, task: Task | None, max_rows: int | None,
    require_labels: bool,
) -> Dataset:
    problems = list(table.problems)
    if not table.rows:
        raise DatasetError(problems or [Problem(None, None, "no data rows")], source)
    wanted = wanted or DatasetColumns()
    labelled = require_labels or wanted.label in table.column_names()
    columns = _resolve_columns(table, wanted, problems, labelled)
    if columns is None:
        raise DatasetError(problems, source)
    if max_rows is not None and len(table.rows) > max_rows:
        problems.append(Problem(None, None, f"too many rows: {len(table.rows)}, the limit is {max_rows}"))
    dataset = _build(table, columns, task, source, problems) if labelled else _unlabelled(table, columns, source,
                                                                                           problems)
    if problems:
        raise DatasetError(sorted(problems, key=_problem_order), source)
    return dataset


def _problem_order(problem: Problem) -> tuple[int, int]:
    return (0, 0) if problem.row is None else (1, problem.row)


def _resolve_columns(
    table: RawTable, wanted: DatasetColumns, problems: list[Problem], labelled: bool = True
) -> DatasetColumns | None:
    """Fill in auto-detected columns; None (with problems added) when a needed column is absent."""
    available = table.column_names()
    found = f"found columns: {', '.join(map(repr, available)) or 'none'}"
    text, pair = wanted.text, wanted.text_pair
    if text is None:
        auto = next(((t, p) for t, p in AUTO_COLUMNS if t in available), None)
        if auto is None:
            problems.append(Problem(None, None, f"no text column: expected 'text' or 'sentence1' ({found})"))
            return None
        text = auto[0]
        if pair is None and auto[1] in available:
            pair = auto[1]
    needed = (text, pair, wanted.label) if labelled else (text, pair)
    missing = [name for name in needed if name is not None and name not in available]
    problems += [Problem(None, name, f"missing column ({found})") for name in missing]
    return None if missing else DatasetColumns(text, pair, wanted.label)


def _build(
    table: RawTable, columns: DatasetColumns, task: Task | None, source: str, problems: list[Problem]
) -> Dataset:
    texts = [_row_texts(row, columns, problems) for row in table.rows]
    raw = [_raw_label(row, columns.label, problems) for row in table.rows]
    task = task or infer_task([value for value in raw if value is not None], table.typed)
    labels = [
        _label(row, value, task, table.typed, columns.label, problems)
        for row, value in zip(table.rows, raw, strict=True)
    ]
    names = class_names([v for v in labels if v is not None]) if task == "classification" else ()
    reviewed = RATIONALE_COLUMN in table.column_names()
    examples: list[Example] = []
    for row, text, label in zip(table.rows, texts, labels, strict=True):
        if text is not None and label is not None:
            spans = _rationale(row, text[0], problems) if reviewed else None
            examples.append(Example(len(examples), row.row, text[0], text[1], _final(label, task), spans))
    return Dataset(examples, task, names, source, columns)


def _rationale(row: RawRow, text: str, problems: list[Problem]) -> tuple[tuple[int, int], ...] | None:
    try:
        return parse_spans(row.values.get(RATIONALE_COLUMN), text)
    except ValueError as exc:
        problems.append(Problem(row.row, RATIONALE_COLUMN, str(exc)))
        return None


def _unlabelled(table: RawTable, columns: DatasetColumns, source: str, problems: list[Problem]) -> Dataset:
    """A dataset of texts only: every label "", no class names."""
    texts = [_row_texts(row, columns, problems) for row in table.rows]
    examples: list[Example] = []
    for row, text in zip(table.rows, texts, strict=True):
        if text is not None:
            examples.append(Example(len(examples), row.row, text[0], text[1], ""))
    return Dataset(examples, "classification", (), source, columns, labelled=False)


def _row_texts(
    row: RawRow, columns: DatasetColumns, problems: list[Problem]
) -> tuple[str, str | None] | None:
    """The row's text (and second text); None when one of them was reported as a problem."""
    text = _checked(row, columns.text or "text", text_value, problems)
    if columns.text_pair is None:
        return None if text is None else (text, None)
    pair = _checked(row, columns.text_pair, text_value, problems)
    return None if text is None or pair is None else (text, pair)


def _raw_label(row: RawRow, column: str, problems: list[Problem]) -> Any:
    return _checked(row, column, label_value, problems)


def _checked(
    row: RawRow, column: str, check: Callable[[dict[str, Any], str], Any], problems: list[Problem]
) -> Any:
    """`check(values, column)`, or None with the problem recorded for this row and column."""
    try:
        return check(row.values, column)
    except BadValue as exc:
        problems.append(Problem(row.row, column, str(exc)))
        return None


def _label(
    row: RawRow, value: Any, task: Task, typed: bool, column: str, problems: list[Problem]
) -> int | str | float | None:
    if value is None:
        return None
    convert = as_class if task == "classification" else as_number
    return _checked(row, column, lambda values, _: convert(value, typed), problems)


def _final(label: int | str | float, task: Task) -> str | float:
    return str(label) if task == "classification" else float(label)


def check_splits(train: Dataset, dev: Dataset | None, *, min_per_class: int = 2) -> None:
    """Raise DatasetError when train and dev do not fit together or a class has too few training examples."""
    problems: list[Problem] = []
    if dev is not None and dev.task != train.task:
        problems.append(Problem(None, None, f"task mismatch: train is {train.task}, dev is {dev.task}"))
        raise DatasetError(problems)
    if dev is not None and dev.pair != train.pair:
        shape = {True: "text pairs", False: "single texts"}
        problems.append(Problem(None, None, f"train has {shape[train.pair]}, dev has {shape[dev.pair]}"))
    if train.task == "classification":
        problems += _thin_classes(train, min_per_class)
        problems += _unseen_labels(train, dev) if dev is not None else []
    if problems:
        raise DatasetError(problems)


def _thin_classes(train: Dataset, min_per_class: int) -> list[Problem]:
    counts = Counter(example.label for example in train.examples)
    names = dict.fromkeys([*train.labels, *map(str, counts)])
    return [
        Problem(
            None,
            train.columns.label,
            f"class {name!r} has {counts[name]} training example"
            f"{'' if counts[name] == 1 else 's'}, at least {min_per_class} are needed",
        )
        for name in names
        if counts[name] < min_per_class
    ]


def _unseen_labels(train: Dataset, dev: Dataset) -> list[Problem]:
    known = {example.label for example in train.examples}
    rows: dict[str, list[int]] = defaultdict(list)
    for example in dev.examples:
        if example.label not in known:
            rows[str(example.label)].append(example.row)
    return [
        Problem(
            found[0],
            dev.columns.label,
            f"dev label {name!r} does not occur in train (dev rows {_rows(found)})",
        )
        for name, found in rows.items()
    ]


def _rows(rows: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, rows[:limit]))
    return f"{shown}, … {len(rows) - limit} more" if len(rows) > limit else shown


def stratified_split(ds: Dataset, *, dev_fraction: float = 0.1, seed: int = 42) -> tuple[Dataset, Dataset]:
    """Split off a dev set, the same for the same seed. Classification: every class keeps >= 1 example in
    train and, where it has >= 2, puts >= 1 into dev. Regression: a seeded shuffle split. Rows and example
    ids still point at the original file."""
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    if len(ds.examples) < 2:
        raise DatasetError(
            [Problem(None, None, "need at least 2 examples to split off a dev set")], ds.source
        )
    rng = random.Random(seed)
    groups: dict[str | float, list[int]] = defaultdict(list)
    for index, example in enumerate(ds.examples):
        groups[example.label if ds.task == "classification" else 0.0].append(index)
    dev = {index for key in sorted(groups, key=str) for index in _pick(groups[key], dev_fraction, rng)}
    train_examples = [e for i, e in enumerate(ds.examples) if i not in dev]
    dev_examples = [e for i, e in enumerate(ds.examples) if i in dev]
    return replace(ds, examples=train_examples), replace(ds, examples=dev_examples)


def _pick(indices: list[int], fraction: float, rng: random.Random) -> list[int]:
    """A random `fraction` of `indices`: at least one when there are two or more, never all of them."""
    if len(indices) < 2:
        return []
    shuffled = indices[:]
    rng.shuffle(shuffled)
    return shuffled[: min(len(indices) - 1, max(1, round(len(indices) * fraction)))]


def head(ds: Dataset, n: int) -> Dataset:
    """The first `n` examples (for `--max-examples`); `labels` keeps only the classes still present."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    kept = ds.examples[:n]
    present = {example.label for example in kept}
    labels = tuple(name for name in ds.labels if name in present)
    return replace(ds, examples=kept, labels=labels)
