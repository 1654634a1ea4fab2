"""Handlers of `ssa train` and `ssa label --weak` (these need torch)."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ssa_core.cli.progress import console, progress_bar
from ssa_core.config import ModelConfig, TrainConfig, default_base_model
from ssa_core.data.datasets import Dataset, DatasetColumns, check_splits, head, load_dataset, stratified_split
from ssa_core.data.distractors import load_pool
from ssa_core.data.rationales import (
    ReviewedColumns,
    attach_file_rationales,
    is_label_studio_file,
    label_studio_spans,
    reviewed_count,
    write_label_studio_as_jsonl,
)
from ssa_core.recipes import resolve
from ssa_core.records import IterationRecord, TrainingMetrics
from ssa_core.train.trainer import Progress as TrainProgress


def columns_of(args: argparse.Namespace) -> DatasetColumns:
    return DatasetColumns(text=args.text_column, text_pair=args.pair_column, label=args.label_column)


def read_splits(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    """Load and validate train/dev; without --dev make a stratified split and say so."""
    columns = columns_of(args)
    train = load_train_file(Path(args.train), columns, args.task)
    if getattr(args, "rationales", None) is not None:
        path = Path(args.rationales)
        reviewed = label_studio_spans(path.read_bytes(), str(path))
        train = replace(train, examples=attach_file_rationales(train.examples, reviewed, str(path)))
    if reviewed_count(train.examples):
        console.print(f"{reviewed_count(train.examples)} rows have reviewed rationales (token supervision in place "
                      "of weak labels)")
    if args.max_examples:
        train = head(train, args.max_examples)
    if args.dev is None:
        train, dev = stratified_split(train, seed=args.seed)
        console.print(f"no --dev given: split {len(dev.examples)} stratified dev examples off the training data")
    else:
        dev = load_dataset(args.dev, columns=columns, task=train.task)
    check_splits(train, dev)
    return train, dev


def load_train_file(path: Path, columns: DatasetColumns, task: Any) -> Dataset:
    """A train file; a Label Studio export (.json) is read as rows with its annotated spans as reviewed rationales,
    as POST /jobs/ssa-train does (ssa_core.data.rationales.label_studio_rows)."""
    if not is_label_studio_file(path.name):
        return load_dataset(path, columns=columns, task=task)
    reviewed = ReviewedColumns(text=columns.text or "text", text_pair=columns.text_pair or "text_pair",
                               label=columns.label)
    with tempfile.TemporaryDirectory(prefix="ssa-label-studio-") as folder:
        rows = Path(folder) / f"{path.stem}.jsonl"
        write_label_studio_as_jsonl(path, rows, str(path), reviewed)
        console.print(f"{path.name}: a Label Studio export, read as {sum(1 for _ in rows.open())} train rows")
        return load_dataset(rows, columns=columns, task=task)


class RichProgress:
    """Progress bars for the CLI: one bar over all training steps, with stage and iteration."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("loading", total=None)

    def on_progress(self, p: TrainProgress) -> None:
        label = f"iteration {p.iteration} (of 0–{p.iterations - 1}) · {p.stage}"
        self.progress.update(self.task, description=label, completed=p.step, total=p.total_steps or None)
        if p.stage == "evaluated" and isinstance(p.metrics, IterationRecord):
            dev = ", ".join(f"{k} {v:.4f}" for k, v in p.metrics.dev.items())
            self.progress.console.print(f"iteration {p.iteration}: dev {dev}")

    def should_stop(self) -> bool:
        return False


def metrics_table(metrics: TrainingMetrics) -> Table:
    table = Table(title=f"dev metrics per iteration (best: {metrics.best_iteration}; iteration 0 = no probing)")
    table.add_column("iteration", justify="right")
    names = list(metrics.iterations[0].dev)
    for name in [*names, "train loss", "kept rate", "seconds"]:
        table.add_column(name, justify="right")
    for record in metrics.iterations:
        kept = record.probe.kept_rate if record.probe is not None else None
        best = "*" if record.iteration == metrics.best_iteration else ""
        table.add_row(f"{record.iteration}{best}", *(f"{record.dev[n]:.4f}" for n in names),
                      f"{record.train_loss:.4f}", "-" if kept is None else f"{kept:.3f}", f"{record.seconds:.1f}")
    return table


def run_train(args: argparse.Namespace) -> int:
    from ssa_core.train.pipeline import train_model

    train, dev = read_splits(args)
    model_values, train_values = resolve(
        args.recipe,
        {"method": args.method, "lambda_tok": args.lambda_tok, "tau": args.tau, "cls_weight": args.cls_weight,
         "max_length": args.max_length, "attention_scores": args.attention_scores},
        {"iterations": args.iterations, "learning_rate": args.learning_rate, "batch_size": args.batch_size,
         "seed": args.seed, "label_mode": args.label_mode, "metric": args.metric,
         "distractor_share": args.distractor_share, "distractor_sources": args.distractor_sources})
    model_cfg = ModelConfig(base_model=args.base_model or default_base_model(), task=train.task, labels=train.labels,
                            **model_values)
    train_cfg = TrainConfig(**train_values)
    pool = load_pool(args.distractors) if args.distractors is not None else None
    out: Path = args.out
    checkpoints = out / ".checkpoints"
    if args.no_resume:
        import shutil

        shutil.rmtree(checkpoints, ignore_errors=True)
    console.print(f"recipe {args.recipe}: training {model_cfg.method} "
                  f"on {len(train.examples)} examples ({len(dev.examples)} dev) → {out}")
    with progress_bar() as bar:
        result = train_model(train, dev, model_cfg, train_cfg, out, callback=RichProgress(bar),
                             checkpoint_dir=checkpoints, device=args.device, distractors=pool)
    Console().print(metrics_table(result.metrics))
    parity = ", ".join(f"{k} {v:.1e}" for k, v in result.parity.items())
    console.print(f"model folder: {out} (ONNX parity max abs diff: {parity})")
    return 0


def run_label(args: argparse.Namespace) -> int:
    from ssa_core.train.pipeline import label_dataset

    dataset = load_dataset(args.data, columns=columns_of(args), task=args.task)
    with console.status(f"probing {len(dataset.examples)} examples"):
        stats = label_dataset(args.model, dataset, args.out, label_mode=args.label_mode, seed=args.seed,
                              rounds=args.rounds, device=args.device)
    console.print(f"wrote {stats['kept_copies']} labelled copies to {args.out} "
                  f"(kept rate {stats['kept_rate']:.3f}, masked share {stats['masked_token_share']:.3f})")
    return 0
