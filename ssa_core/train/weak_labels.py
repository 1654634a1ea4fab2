"""Weak token labels as a product: one JSONL record per kept masked copy (text, wordpieces with offsets, labels)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ssa_core.train.probing import WeakExample


def weak_label_record(weak: WeakExample, iteration: int, selected: bool, tokens: Sequence[str]) -> dict[str, Any]:
    """JSON-able record: the example, its wordpieces (text, char span, segment) and their 0/1 labels."""
    example = weak.encoded.example
    texts = (example.text, example.text_pair or "")
    return {
        "example_id": example.example_id,
        "row": example.row,
        "iteration": iteration,
        "text": example.text,
        "text_pair": example.text_pair,
        "label": example.label,
        "selected": selected,
        "tokens": [
            {
                "text": texts[p.segment][p.start : p.end],
                "wordpiece": tokens[p.index],
                "start": p.start,
                "end": p.end,
                "segment": p.segment,
                "label": weak.token_labels[p.index],
            }
            for p in weak.encoded.positions
        ],
    }


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically (temp file + rename); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def label_file(directory: Path, iteration: int) -> Path:
    return directory / f"iter{iteration}.jsonl"
