"""summarize_dataset_file (the API's validation of an upload): the same verdict as load_dataset_file from the same
row checks, and memory flat in the file's size (a few bytes per row, no texts kept)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from ssa_core.data.datasets import (
    DatasetColumns,
    DatasetError,
    check_splits,
    load_dataset_file,
    split_summary,
    stratified_split,
    summarize_dataset_file,
)

MiB = 1 << 20


def write_jsonl(path: Path, rows: int, text_bytes: int = 200) -> Path:
    with path.open("w") as out:
        for index in range(rows):
            text = f"row {index} " + "x" * text_bytes
            out.write(json.dumps({"text": text, "label": ["pos", "neg", "mid"][index % 3]}) + "\n")
    return path


def write_csv(path: Path, rows: int, text_bytes: int = 200) -> Path:
    with path.open("w") as out:
        out.write("text,label\n")
        for index in range(rows):
            out.write(f"row {index} {'y' * text_bytes},{index % 4}\n")
    return path


def write_parquet(path: Path, rows: int, text_bytes: int = 200) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": [f"row {i} " + "z" * text_bytes for i in range(rows)],
                      "label": [float(i % 7) + 0.5 for i in range(rows)]})
    pq.write_table(table, path, row_group_size=2000)
    return path


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_summary_matches_the_full_load(fmt: str, tmp_path: Path) -> None:
    path = WRITERS[fmt](tmp_path / f"data.{fmt}", 3000, 20)
    full = load_dataset_file(path, f"up.{fmt}")
    summary = summarize_dataset_file(path, f"up.{fmt}")
    assert (summary.task, summary.labels, summary.columns, summary.labelled, summary.pair) == \
        (full.task, full.labels, full.columns, full.labelled, full.pair)
    assert summary.count == len(full.examples)
    assert list(summary.labelled_rows()) == [(e.label if full.task == "classification" else 0.0, e.row)
                                             for e in full.examples]
    check_splits(summary, None)
    train, dev = stratified_split(full, dev_fraction=0.2, seed=7)
    assert split_summary(summary, dev_fraction=0.2, seed=7) == (len(train.examples), [e.row for e in dev.examples])


def test_summary_reports_the_same_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "", "label": "y"}\nnot json\n{"text": "b"}\n')
    with pytest.raises(DatasetError) as full:
        load_dataset_file(path, "up.jsonl")
    with pytest.raises(DatasetError) as summary:
        summarize_dataset_file(path, "up.jsonl")
    assert summary.value.problems == full.value.problems
    assert [p.row for p in summary.value.problems] == [2, 3, 4]


def test_unseen_dev_labels_are_found_from_summaries(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", 30, 5)
    dev = tmp_path / "dev.jsonl"
    dev.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": "odd"}\n')
    with pytest.raises(DatasetError) as caught:
        check_splits(summarize_dataset_file(train, "t.jsonl"),
                     summarize_dataset_file(dev, "d.jsonl", columns=DatasetColumns("text")))
    assert [(p.row, p.message) for p in caught.value.problems] == \
        [(2, "dev label 'odd' does not occur in train (dev rows 2)")]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_validating_a_large_upload_keeps_memory_flat(fmt: str, tmp_path: Path) -> None:
    """40,000 rows of ~200 bytes (8 MB): the peak of Python allocations stays under 2 MiB (about a chunk plus
    16 bytes a row), where holding the rows would take several times the file."""
    path = WRITERS[fmt](tmp_path / f"big.{fmt}", 40_000)
    assert path.stat().st_size > 4 * MiB or fmt == "parquet"
    tracemalloc.start()
    try:
        summary = summarize_dataset_file(path, f"big.{fmt}", max_bytes=64 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.count == 40_000
    assert peak < 2 * MiB, f"peak {peak / MiB:.1f} MiB"
