"""Load and validate datasets: JSONL, CSV, TSV or Parquet; single texts or text pairs; class or float labels.

Validation reads the whole file and collects every problem with its 1-based row number before raising one
`DatasetError`. It is one streaming pass over the rows (`_validate`) whose valid examples go either into a list
(`load_dataset*`: the worker, the CLI) or into a `DatasetSummary` of row numbers and labels (`summarize_dataset_file`:
the API, whose memory then stays flat in the upload's size). Torch-free: only the standard library, and pyarrow
(imported lazily) for Parquet.
"""

from __future__ import annotations

import contextlib
import random
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ssa_core.config import Task
from ssa_core.data.formats import (
    FORMATS,
    DatasetError,
    Problem,
    RawRow,
    Table,
    TableFile,
    format_of,
    read_table,
)
from ssa_core.data.rationales import RATIONALE_COLUMN, parse_spans
from ssa_core.data.values import (
    BadValue,
    TaskGuess,
    as_class,
    as_number,
    class_names,
    label_value,
    text_value,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Dataset",
    "DatasetColumns",
    "DatasetError",
    "DatasetSummary",
    "Example",
    "Problem",
    "check_splits",
    "head",
    "load_dataset",
    "load_dataset_bytes",
    "split_summary",
    "stratified_split",
    "summarize_dataset_file",
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
    # reviewed character spans of `text` (ssa_core.data.rationales)
    rationale: tuple[tuple[int, int], ...] | None = None


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

    def labelled_rows(self) -> Iterator[tuple[str | float, int]]:
        """Each example's label and row number, in file order."""
        return ((example.label, example.row) for example in self.examples)


@dataclass(frozen=True)
class DatasetSummary:
    """A validated dataset without its texts (what the API keeps of an upload): per example only its row number and,
    for classification, its label as an index into `classes` (first-seen order). Picklable (crosses processes)."""

    task: Task
    labels: tuple[str, ...]  # sorted class names; () for regression
    source: str
    columns: DatasetColumns
    labelled: bool
    rows: array[int]  # array("q"): the file row of each example
    classes: tuple[str, ...] = ()  # the distinct final labels, first-seen order (classification)
    codes: array[int] = field(default_factory=lambda: array("l"))  # index into classes

    @property
    def pair(self) -> bool:
        return self.columns.text_pair is not None

    @property
    def count(self) -> int:
        return len(self.rows)

    def labelled_rows(self) -> Iterator[tuple[str | float, int]]:
        if self.task != "classification":
            return ((0.0, row) for row in self.rows)
        return ((self.classes[code], row) for code, row in zip(self.codes, self.rows, strict=True))


class _Summarizer:
    """Collects a DatasetSummary's per-example fields from validated examples."""

    def __init__(self, classify: bool) -> None:
        self.classify = classify
        self.rows: array[int] = array("q")
        self.codes: array[int] = array("l")
        self.classes: dict[str, int] = {}

    def add(self, example: Example) -> None:
        self.rows.append(example.row)
        if self.classify:
            self.codes.append(self.classes.setdefault(str(example.label), len(self.classes)))


def summarize_dataset_file(
    path: Path,
    filename: str,
    *,
    columns: DatasetColumns | None = None,
    task: Task | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int | None = None,
    require_labels: bool = True,
) -> DatasetSummary:
    """Validate an upload staged at `path` exactly as `load_dataset_file` does (same problems), keeping no texts:
    memory stays flat in the file's size except for a few bytes per row. Raises DatasetError."""
    summary = _Summarizer(classify=True)
    table = _staged_table(path, filename, max_bytes)
    shape = _validate(table, filename, columns, task, max_rows, require_labels, summary.add)
    classify = shape.labelled and shape.task == "classification"
    return DatasetSummary(shape.task, shape.labels, filename, shape.columns, shape.labelled, summary.rows,
                          tuple(summary.classes) if classify else (), summary.codes if classify else array("l"))


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
    return _from_table(_staged_table(path, filename, max_bytes), filename, columns, task, max_rows, require_labels)


def load_example_range(
    path: Path, columns: DatasetColumns, task: Task, labelled: bool, start: int, end: int,
) -> list[Example]:
    """Examples [start, end) of a file that passed validation with these (resolved) columns and task, read only up
    to `end` (TableFile.iter_range): a label shard holds its own rows, never the whole file. Reviewed rationales
    are not read. Raises DatasetError when the file no longer reads as validated."""
    fmt = _format_or_raise(path.name)
    table = TableFile(path, fmt)
    problems: list[Problem] = []
    examples: list[Example] = []
    for offset, row in enumerate(table.iter_range(start, end)):
        example = _example(start + offset, row, columns, task, table.typed, labelled, problems, {})
        if example is not None:
            examples.append(example)
    if table.problems or problems or len(examples) != end - start:
        found = [*table.problems, *problems] or [Problem(None, None, f"rows {start + 1}-{end}: the file has "
                                                         f"{len(examples)} of them")]
        raise DatasetError(sorted(found, key=_problem_order), path.name)
    return examples


def _staged_table(path: Path, filename: str, max_bytes: int) -> TableFile:
    """The upload staged at `path`, to be read row by row, once its format (from `filename`), size and content pass;
    DatasetError naming `filename` otherwise."""
    fmt = _format_or_raise(filename)
    _check_size(path.stat().st_size, max_bytes, filename)
    if not _has_content(path):
        raise DatasetError([Problem(None, None, "the file is empty")], filename)
    return TableFile(path, fmt)


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


@dataclass(frozen=True)
class _Shape:
    """What validation found besides the examples."""

    columns: DatasetColumns
    task: Task
    labels: tuple[str, ...]
    labelled: bool


def _from_table(
    table: Table, source: str, wanted: DatasetColumns | None, task: Task | None, max_rows: int | None,
    require_labels: bool,
) -> Dataset:
    examples: list[Example] = []
    shape = _validate(table, source, wanted, task, max_rows, require_labels, examples.append)
    return Dataset(examples, shape.task, shape.labels, source, shape.columns, labelled=shape.labelled)


def _validate(
    table: Table, source: str, wanted: DatasetColumns | None, task: Task | None, max_rows: int | None,
    require_labels: bool, sink: Callable[[Example], None],
) -> _Shape:
    """The one validation of a dataset's rows: each valid example goes to `sink` as it is read (the rows are never
    all held here); raises DatasetError listing every problem. A file on disk is read once more to find its columns
    (JSONL) and once more to infer the task (labels, no task given)."""
    if not table.has_rows():
        raise DatasetError(table.problems or [Problem(None, None, "no data rows")], source)
    wanted = wanted or DatasetColumns()
    names = table.column_names()
    labelled = require_labels or wanted.label in names
    problems: list[Problem] = []
    columns = _resolve_columns(names, wanted, problems, labelled)
    if columns is None:
        for _ in table.iter_rows():  # the reader's problems of every row are reported too
            pass
        raise DatasetError([*table.problems, *problems], source)
    if labelled and task is None:
        task = _infer_task(table, columns.label)
    task = task or "classification"
    classes: dict[int | str, None] = {}
    reviewed = labelled and RATIONALE_COLUMN in names  # reviewed rationales (ssa_core.data.rationales)
    count = kept = 0
    for row in table.iter_rows():
        count += 1
        example = _example(kept, row, columns, task, table.typed, labelled, problems, classes, reviewed)
        if example is not None:
            sink(example)
            kept += 1
    found = list(table.problems)
    if max_rows is not None and count > max_rows:
        found.append(Problem(None, None, f"too many rows: {count}, the limit is {max_rows}"))
    if found or problems:
        raise DatasetError(sorted([*found, *problems], key=_problem_order), source)
    labels = class_names(list(classes)) if labelled and task == "classification" else ()
    return _Shape(columns, task if labelled else "classification", labels, labelled)


def _infer_task(table: Table, column: str) -> Task:
    guess = TaskGuess(table.typed)
    for row in table.iter_rows():
        with contextlib.suppress(BadValue):
            guess.add(label_value(row.values, column))
    return guess.task


def _example(
    example_id: int, row: RawRow, columns: DatasetColumns, task: Task, typed: bool, labelled: bool,
    problems: list[Problem], classes: dict[int | str, None], reviewed: bool = False,
) -> Example | None:
    """One row checked: its Example, or None with its problems recorded; `classes` gains its class label."""
    text = _row_texts(row, columns, problems)
    if not labelled:
        return None if text is None else Example(example_id, row.row, text[0], text[1], "")
    label = _label(row, _raw_label(row, columns.label, problems), task, typed, columns.label, problems)
    if label is not None and task == "classification":
        classes[label] = None  # type: ignore[index]
    if text is None or label is None:
        return None
    spans = _rationale(row, text[0], problems) if reviewed else None
    return Example(example_id, row.row, text[0], text[1], _final(label, task), spans)


def _problem_order(problem: Problem) -> tuple[int, int]:
    return (0, 0) if problem.row is None else (1, problem.row)


def _resolve_columns(
    available: list[str], wanted: DatasetColumns, problems: list[Problem], labelled: bool = True
) -> DatasetColumns | None:
    """Fill in auto-detected columns; None (with problems added) when a needed column is absent."""
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


def _rationale(row: RawRow, text: str, problems: list[Problem]) -> tuple[tuple[int, int], ...] | None:
    try:
        return parse_spans(row.values.get(RATIONALE_COLUMN), text)
    except ValueError as exc:
        problems.append(Problem(row.row, RATIONALE_COLUMN, str(exc)))
        return None


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


class Split(Protocol):
    """What check_splits and the dev split need of a dataset: a Dataset, or an upload's DatasetSummary."""

    @property
    def task(self) -> Task: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def columns(self) -> DatasetColumns: ...

    @property
    def source(self) -> str: ...

    @property
    def pair(self) -> bool: ...

    def labelled_rows(self) -> Iterator[tuple[str | float, int]]: ...


def check_splits(train: Split, dev: Split | None, *, min_per_class: int = 2) -> None:
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


def _thin_classes(train: Split, min_per_class: int) -> list[Problem]:
    counts = Counter(label for label, _ in train.labelled_rows())
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


def _unseen_labels(train: Split, dev: Split) -> list[Problem]:
    known = {label for label, _ in train.labelled_rows()}
    rows: dict[str, list[int]] = defaultdict(list)
    for label, row in dev.labelled_rows():
        if label not in known:
            rows[str(label)].append(row)
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
    dev = dev_positions(ds, len(ds.examples), dev_fraction, seed)
    train_examples = [e for i, e in enumerate(ds.examples) if i not in dev]
    dev_examples = [e for i, e in enumerate(ds.examples) if i in dev]
    return replace(ds, examples=train_examples), replace(ds, examples=dev_examples)


def split_summary(ds: DatasetSummary, *, dev_fraction: float = 0.1, seed: int = 42) -> tuple[int, list[int]]:
    """`stratified_split` of an upload's summary: the number of training examples left, and the dev rows (the same
    rows as stratified_split of the full dataset gives)."""
    dev = dev_positions(ds, ds.count, dev_fraction, seed)
    return ds.count - len(dev), [row for index, row in enumerate(ds.rows) if index in dev]


def dev_positions(ds: Split, count: int, dev_fraction: float, seed: int) -> set[int]:
    """The positions (0-based, among the examples) that go to dev; see stratified_split."""
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    if count < 2:
        raise DatasetError([Problem(None, None, "need at least 2 examples to split off a dev set")], ds.source)
    rng = random.Random(seed)
    groups: dict[str | float, array[int]] = defaultdict(lambda: array("q"))
    for index, (label, _) in enumerate(ds.labelled_rows()):
        groups[label if ds.task == "classification" else 0.0].append(index)
    return {index for key in sorted(groups, key=str) for index in _pick(groups[key], dev_fraction, rng)}


def _pick(indices: array[int], fraction: float, rng: random.Random) -> Iterable[int]:
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
