"""Reviewed rationales: character spans of a row's text that a person marked as what the label rests on, from a
train file's `rationale_spans` column ([[start, end], ...]) or from a Label Studio export (a JSON list of tasks
whose annotations mark spans of data.text; data.row names the train file's row). Validated with row numbers before
anything trains; attached to the examples (`Example.rationale`); turned into token targets by `token_targets`.
Torch-free.

A reviewed row's token target says: the wordpieces that overlap a span matter (1), every other wordpiece of the
text does not (0); wordpieces of text_pair are not supervised (ignored). Rows without spans keep the weak labels."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from ssa_core.data.formats import DatasetError, Problem

RATIONALE_COLUMN: Final = "rationale_spans"
Spans = tuple[tuple[int, int], ...]
IGNORE: Final = -1.0


def parse_spans(value: Any, text: str) -> Spans | None:
    """A rationale_spans value as sorted spans within `text`; None for a missing or empty value (the row is not
    reviewed). ValueError naming what is wrong otherwise."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list of [start, end] pairs: {exc.msg}") from None
    if hasattr(value, "tolist"):  # a pyarrow / numpy list
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of [start, end] pairs, found {type(value).__name__}")
    if not value:
        return None
    spans: list[tuple[int, int]] = []
    for k, pair in enumerate(value):
        if hasattr(pair, "tolist"):
            pair = pair.tolist()
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise ValueError(f"span {k}: expected [start, end] with two integers, found {pair!r}")
        spans.append(check_span(int(pair[0]), int(pair[1]), text, k))
    return tuple(sorted(set(spans)))


def check_span(start: int, end: int, text: str, k: int) -> tuple[int, int]:
    if not 0 <= start < end:
        raise ValueError(f"span {k}: [{start}, {end}] needs 0 <= start < end")
    if end > len(text):
        raise ValueError(f"span {k}: [{start}, {end}] ends past the text ({len(text)} characters)")
    return start, end


def label_studio_spans(data: bytes, source: str) -> dict[int, list[tuple[int, int, str]]]:
    """A Label Studio export (JSON list of tasks) as {train row: [(start, end, the task's text), ...]}: the spans of
    each task's latest annotation that was not cancelled (its `labels` results). Tasks without such an annotation or
    without spans are skipped. DatasetError naming task numbers (1-based) when the file does not fit."""
    try:
        tasks = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError([Problem(None, None, f"not a JSON file: {exc}")], source) from None
    if not isinstance(tasks, list):
        raise DatasetError([Problem(None, None, "expected a JSON list of Label Studio tasks")], source)
    found: dict[int, list[tuple[int, int, str]]] = {}
    problems: list[Problem] = []
    for number, task in enumerate(tasks, start=1):
        try:
            row, text, spans = _task_spans(task)
        except ValueError as exc:
            problems.append(Problem(None, None, f"task {number}: {exc}"))
            continue
        if not spans:
            continue
        if row in found:
            problems.append(Problem(None, None, f"task {number}: row {row} is reviewed twice"))
            continue
        found[row] = [(start, end, text) for start, end in spans]
    if problems:
        raise DatasetError(problems[:50], source)
    return found


def _task_spans(task: Any) -> tuple[int, str, list[tuple[int, int]]]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        raise ValueError("expected an object with `data`")
    data = task["data"]
    row, text = data.get("row"), data.get("text")
    if not isinstance(row, int) or isinstance(row, bool) or row < 1:
        raise ValueError("data.row must be the train file's 1-based row number")
    if not isinstance(text, str):
        raise ValueError("data.text must be the row's text")
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return row, text, []
    spans: list[tuple[int, int]] = []
    for k, result in enumerate(annotations[-1].get("result") or []):
        if not isinstance(result, dict) or result.get("type") != "labels":
            continue
        value = result.get("value") or {}
        start, end = value.get("start"), value.get("end")
        if not isinstance(start, int) or not isinstance(end, int):
            raise ValueError(f"row {row}: result {k}: value.start and value.end must be integers")
        try:
            spans.append(check_span(start, end, text, k))
        except ValueError as exc:
            raise ValueError(f"row {row}: {exc}") from None
    return row, text, sorted(set(spans))


def attach_file_rationales(examples: Sequence[Any], reviewed: Mapping[int, list[tuple[int, int, str]]],
                           source: str) -> list[Any]:
    """`examples` (ssa_core.data.datasets.Example) with the reviewed spans of their rows attached; DatasetError when a
    reviewed row is not among them or its text differs from the train row's."""
    by_row = {e.row: e for e in examples}
    problems: list[Problem] = []
    for row, spans in sorted(reviewed.items()):
        example = by_row.get(row)
        if example is None:
            problems.append(Problem(row, None, "reviewed row is not a training row"))
        elif spans and spans[0][2] != example.text:
            problems.append(Problem(row, None, "the reviewed text differs from the train file's text"))
    if problems:
        raise DatasetError(problems[:50], source)
    return [replace(e, rationale=tuple((s, t) for s, t, _ in reviewed[e.row])) if e.row in reviewed else e
            for e in examples]


def token_targets(positions: Sequence[Any], length: int, spans: Spans) -> list[float]:
    """Token targets of a reviewed row (ssa_core.data.textspans.TokenPosition list, sequence length): 1 on wordpieces of
    the text overlapping a span, 0 on the text's other wordpieces, IGNORE elsewhere (special tokens, text_pair)."""
    targets = [IGNORE] * length
    for p in positions:
        if p.segment == 0:
            targets[p.index] = 1.0 if any(p.start < end and start < p.end for start, end in spans) else 0.0
    return targets


def reviewed_count(examples: Iterable[Any]) -> int:
    return sum(1 for e in examples if getattr(e, "rationale", None))


# ---- a Label Studio export as training rows -------------------------------------------------------------------
LABEL_STUDIO_SUFFIX: Final = ".json"  # a train file with this suffix is read as a Label Studio export


@dataclass(frozen=True)
class ReviewedColumns:
    """The column names the converted rows use (the job's / the CLI's text, text_pair and label columns)."""

    text: str = "text"
    text_pair: str = "text_pair"
    label: str = "label"


def label_studio_rows(data: bytes, source: str, columns: ReviewedColumns | None = None) -> list[dict[str, Any]]:
    """A Label Studio export (the JSON list of tasks Label Studio exports, e.g. after reviewing a label job's
    `format=label-studio` tasks) as train rows, one per task in order (row k = task k): data.text as the text,
    data.text_pair when present, the label (data.label, else the class the latest annotation chooses), and the
    `labels` spans of the latest annotation that was not cancelled as `rationale_spans` (none: the row keeps the
    weak labels). DatasetError naming each task (1-based) and field that does not fit."""
    cols = columns or ReviewedColumns()
    try:
        tasks = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError([Problem(None, None, f"not a Label Studio export (JSON): {exc}")], source) from None
    if not isinstance(tasks, list) or not tasks:
        raise DatasetError([Problem(None, None, "expected a Label Studio export: a non-empty JSON list of tasks")],
                           source)
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for number, task in enumerate(tasks, start=1):
        try:
            rows.append(_task_row(task, cols))
        except _TaskProblem as exc:
            problems.append(Problem(number, exc.field, f"task {number}: {exc.message}"))
    if problems:
        raise DatasetError(problems[:50], source)
    return rows


class _TaskProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _task_row(task: Any, cols: ReviewedColumns) -> dict[str, Any]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        raise _TaskProblem("data", "expected an object with a `data` object")
    data = task["data"]
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _TaskProblem("data.text", "data.text must be a non-empty string")
    raw = task.get("annotations")
    if raw is not None and not isinstance(raw, list):
        raise _TaskProblem("annotations", "annotations must be a list")
    annotations = [a for a in raw or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    results = annotations[-1].get("result") if annotations else []
    if not isinstance(results, list):
        raise _TaskProblem("annotations.result", "annotations[].result must be a list")
    spans: list[tuple[int, int]] = []
    chosen: Any = None
    for k, result in enumerate(results):
        if not isinstance(result, dict):
            raise _TaskProblem("annotations.result", f"result {k} must be an object")
        value = result.get("value")
        if result.get("type") == "choices" and isinstance(value, dict) and value.get("choices"):
            chosen = value["choices"][0]
        if result.get("type") != "labels":
            continue
        if not isinstance(value, dict):
            raise _TaskProblem("annotations.result.value", f"result {k}: value must be an object")
        start, end = value.get("start"), value.get("end")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            raise _TaskProblem("annotations.result.value", f"result {k}: value.start and value.end must be "
                               f"integers (found {start!r}, {end!r})")
        try:
            spans.append(check_span(start, end, text, k))
        except ValueError as exc:
            raise _TaskProblem("annotations.result.value", f"result {k}: {str(exc).split(': ', 1)[-1]}") from None
    label = data.get("label", chosen)
    if label is None or isinstance(label, bool) or not isinstance(label, str | int | float):
        raise _TaskProblem("data.label", "no label: data.label is missing and no annotation chooses a class")
    row: dict[str, Any] = {cols.text: text, cols.label: label}
    if isinstance(data.get("text_pair"), str):
        row[cols.text_pair] = data["text_pair"]
    if spans:
        row[RATIONALE_COLUMN] = [list(span) for span in sorted(set(spans))]
    return row


def is_label_studio_file(filename: str) -> bool:
    return filename.lower().endswith(LABEL_STUDIO_SUFFIX)


def write_label_studio_as_jsonl(src: Path, dst: Path, source: str, columns: ReviewedColumns | None = None) -> int:
    """Convert the Label Studio export `src` into the JSONL train file `dst`; the rows written. DatasetError."""
    rows = label_studio_rows(src.read_bytes(), source, columns)
    with dst.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def restrict_to_spans(graded: Sequence[float], span_targets: Sequence[float]) -> list[float] | None:
    """A graded probe target (>= 0 per probed wordpiece, IGNORE elsewhere) restricted to a reviewed row's spans
    (`token_targets` of the same row): the probe's weight inside the spans, 0 on the text's other wordpieces, IGNORE
    where the span target ignores (special tokens, text_pair) or the probe did not reach. None when no weight is left
    inside the spans."""
    out = [IGNORE if s == IGNORE else (0.0 if s == 0.0 else float(g)) for g, s in zip(graded, span_targets,
                                                                                    strict=True)]
    return out if any(v > 0 for v in out) else None
