"""`ssa predict --input FILE`: the texts of a JSONL/CSV/TSV/Parquet file in, one prediction per row out as JSONL or
CSV (the class probabilities as `score_<label>` columns in CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssa_core.data.datasets import AUTO_COLUMNS
from ssa_core.data.formats import format_of, read_table
from ssa_core.runtime.predictor import Item, Prediction

OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}


class InputFileError(ValueError):
    """The input file cannot be read, or lacks the text column(s)."""


def read_items(path: Path, pair: bool, text_column: str | None = None, pair_column: str | None = None) -> list[Item]:
    """Every row's text (and second text, for pair models), in file order."""
    fmt = format_of(path.name)
    if fmt is None:
        raise InputFileError(f"{path.name}: unsupported file type (use .jsonl, .csv, .tsv or .parquet)")
    table = read_table(path.read_bytes(), fmt)
    if table.problems:
        raise InputFileError(f"{path.name}: {table.problems[0]}")
    names = table.column_names()
    if text_column is None:
        text_column, default_pair = next(((t, p) for t, p in AUTO_COLUMNS if t in names), (AUTO_COLUMNS[0]))
        pair_column = pair_column or default_pair
    if text_column not in names:
        raise InputFileError(f"{path.name}: no {text_column!r} column (columns: {', '.join(names) or 'none'})")
    if pair and (pair_column is None or pair_column not in names):
        raise InputFileError(f"{path.name}: this model takes text pairs, and the file has no {pair_column!r} column")
    items: list[Item] = []
    for row in table.rows:
        text = row.values.get(text_column)
        if not isinstance(text, str) or not text.strip():
            raise InputFileError(f"{path.name}: row {row.row}: {text_column!r} is empty or not text")
        if pair:
            second = row.values.get(str(pair_column))
            items.append((text, second if isinstance(second, str) else ""))
        else:
            items.append(text)
    if not items:
        raise InputFileError(f"{path.name}: no rows")
    return items


def output_format(path: Path | None) -> str:
    if path is None:
        return "jsonl"
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(f"--output {path.name}: use a .jsonl or .csv file name")
    return fmt


def record(item: Item, p: Prediction) -> dict[str, Any]:
    text, second = (item, None) if isinstance(item, str) else item
    out: dict[str, Any] = {"text": text}
    if second is not None:
        out["text_pair"] = second
    out.update(label=p.label, score=p.score, scores=p.scores, truncated=p.truncated)
    return out


def render(items: Sequence[Item], predictions: Sequence[Prediction], fmt: str, labels: Sequence[str]) -> str:
    records = [record(i, p) for i, p in zip(items, predictions, strict=True)]
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    buffer = io.StringIO()
    head = [k for k in ("text", "text_pair") if k in records[0]] + ["label", "score"]
    writer = csv.writer(buffer)
    writer.writerow(head + [f"score_{label}" for label in labels] + ["truncated"])
    for r in records:
        writer.writerow([r[k] for k in head] + [r["scores"].get(label) for label in labels] + [r["truncated"]])
    return buffer.getvalue()
