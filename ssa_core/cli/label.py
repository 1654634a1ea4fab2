"""`ssa label`: the label job's records for a file, without the service (the same code and the same files: JSONL and
Parquet, or review tasks for Label Studio and Argilla with `--format`); `--weak` keeps the training probe's weak
labels (ssa_core.cli.train)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssa_core.cli.progress import console, progress_bar
from ssa_core.config import Task
from ssa_core.data.datasets import DatasetColumns, load_dataset
from ssa_core.labeling.files import atomic_path, read_jsonl, write_jsonl_lines, write_parquet
from ssa_core.labeling.labeler import Labeler, LabelOptions, check_labels, labelled_chunks
from ssa_core.labeling.review import ReviewFormat, label_studio_config, review_stream
from ssa_core.runtime.predictor import Predictor

CHUNK_ROWS = 64


def run_label(args: argparse.Namespace) -> int:
    if args.weak:
        from ssa_core.cli.train import run_label as run_weak_labels

        return run_weak_labels(args)
    if args.probes < 0:
        raise ValueError("--probes must be 0 or more")
    predictor = Predictor.load(args.model, intra_op_threads=args.threads or None)
    columns = DatasetColumns(args.text_column, args.pair_column, args.label_column)
    task: Task = args.task or ("regression" if predictor.task == "regression" else "classification")
    data = load_dataset(args.data, columns=columns, task=task, require_labels=False)
    unknown = check_labels(predictor, data)
    if unknown:
        raise ValueError(f"labels {', '.join(map(repr, unknown))} are not among the model's labels "
                         f"({', '.join(map(repr, predictor.labels))})")
    labeler = Labeler(predictor, LabelOptions(args.probes, args.batch_size), data.labelled)
    out: Path = args.out
    fmt: str = getattr(args, "format", "jsonl")
    jsonl = out if fmt == "jsonl" else out.with_name(f".{out.name}.records.jsonl")
    rows = len(data.examples)
    try:
        with progress_bar() as bar, atomic_path(jsonl) as temporary, temporary.open("w", encoding="utf-8") as handle:
            progress = bar.add_task(f"labelling {Path(args.data).name}", total=rows)
            for records in labelled_chunks(labeler, data.examples, 0, rows, CHUNK_ROWS):
                write_jsonl_lines(records, handle)
                bar.advance(progress, len(records))
        if fmt != "jsonl":
            write_review(fmt, jsonl, out, list(predictor.labels) if predictor.task != "regression" else [])
        console.print(f"wrote {rows} records to {out}" + (f" ({fmt})" if fmt != "jsonl" else ""))
        if args.parquet is not None:
            write_parquet(read_jsonl(jsonl), args.parquet)
            console.print(f"wrote {rows} records to {args.parquet}")
    finally:
        if jsonl != out:
            jsonl.unlink(missing_ok=True)
    return 0


def write_review(fmt: str, records: Path, out: Path, classes: list[str]) -> None:
    """The records at `records` as review tasks at `out` (atomically); Label Studio's labeling config next to it."""
    review: ReviewFormat = "label-studio" if fmt == "label-studio" else "argilla"
    with atomic_path(out) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for piece in review_stream(review, read_jsonl(records), classes):
            handle.write(piece)
    if review == "label-studio":
        config = out.with_name(f"{out.name}.label_config.xml")
        config.write_text(label_studio_config(classes), encoding="utf-8")
        console.print(f"wrote the Label Studio labeling config to {config}")
