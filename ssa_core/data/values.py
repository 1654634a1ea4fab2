"""Checks of single values of a dataset row: texts, labels, and what the labels say about the task."""

from __future__ import annotations

import math
import re
from typing import Any

from ssa_core.config import Task
from ssa_core.data.formats import describe

SURROGATE = re.compile("[\ud800-\udfff]")  # where undecodable bytes ended up (see dataformats.decode)
INT = re.compile(r"[+-]?\d{1,100}")  # longer digit strings stay strings (int() refuses them)
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class BadValue(Exception):
    """A value that cannot be used; the message says why."""


def text_value(values: dict[str, Any], column: str) -> str:
    value = present(values, column, "text")
    if not isinstance(value, str):
        raise BadValue(f"wrong type: expected text, found {describe(value)}")
    if not value.strip():
        raise BadValue("whitespace-only text" if value else "empty text")
    if SURROGATE.search(value):
        raise BadValue("text is not valid UTF-8")
    return value


def label_value(values: dict[str, Any], column: str) -> Any:
    value = present(values, column, "label")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise BadValue("missing label (empty)")
        if SURROGATE.search(value):
            raise BadValue("label is not valid UTF-8")
    return value


def present(values: dict[str, Any], column: str, what: str) -> Any:
    if column not in values:
        raise BadValue("column is missing")
    if values[column] is None:
        raise BadValue(f"missing {what} (null)")
    return values[column]


def number_view(value: Any, typed: bool) -> int | float | None:
    """The value as a number, or None; CSV/TSV strings count when they are written as numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if not typed and isinstance(value, str):
        if INT.fullmatch(value):
            return int(value)
        if FLOAT.fullmatch(value):
            return float(value)
    return None


class TaskGuess:
    """`infer_task` one label at a time (a streaming pass keeps no labels)."""

    def __init__(self, typed: bool) -> None:
        self.typed, self.seen, self.numbers, self.floats = typed, False, True, False

    def add(self, value: Any) -> None:
        number = number_view(value, self.typed)
        self.seen = True
        self.numbers = self.numbers and number is not None
        self.floats = self.floats or isinstance(number, float)

    @property
    def task(self) -> Task:
        return "regression" if self.seen and self.numbers and self.floats else "classification"


def infer_task(values: list[Any], typed: bool) -> Task:
    """Regression when every label is a number and at least one is not an integer; else classification."""
    guess = TaskGuess(typed)
    for value in values:
        guess.add(value)
    return guess.task


def as_class(value: Any, typed: bool) -> int | str:
    if isinstance(value, str):
        return int(value) if not typed and INT.fullmatch(value) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BadValue(f"wrong label type: expected a class name (string or integer), found {describe(value)}")


def as_number(value: Any, typed: bool) -> float:
    number = number_view(value, typed)
    if number is None:
        raise BadValue(f"wrong label type: expected a number (regression), found {describe(value)}")
    try:
        result = float(number)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise BadValue(f"label is not a finite number: {value}")
    return result


def class_names(values: list[int | str | float]) -> tuple[str, ...]:
    """Sorted class names: integers numerically (then as strings), anything else as strings."""
    distinct = set(values)
    integers = sorted(v for v in distinct if isinstance(v, int))
    ordered = [str(v) for v in integers] if len(integers) == len(distinct) else sorted(map(str, distinct))
    return tuple(dict.fromkeys(ordered))
