"""Handler of `ssa eval`: scores through the ONNX runtime, tables (or JSON), an optional confusion-matrix PNG, and
the explanation scores of the served attention (these need torch; without it the report says so)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ssa_core.cli.main import CliError
from ssa_core.config import TRAIN_DEFAULTS
from ssa_core.data.datasets import Dataset, DatasetColumns, load_dataset
from ssa_core.data.distractors import load_pool, shipped_pool
from ssa_core.evaluation.report import ClassificationScores, EvalReport, evaluate
from ssa_core.evaluation.robustness import robustness_report
from ssa_core.runtime.predictor import Predictor


def explanation_scores(model_dir: Path, dataset: Dataset, method: str, task: str, sentences: int,
                       device: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(scores, None), or (None, why not): the same measurement as metrics.json's "explanations" after training."""
    if sentences == 0:
        return None, "not measured (--explain-sentences 0)"
    if task == "regression" or method not in ("layer", "hybrid"):
        return None, (f"not measured: the {method} variant's prediction is not pooled by the SSA attention"
                      if task != "regression" else "not measured for regression models")
    try:
        import torch  # noqa: F401 - only to tell whether the train extra is installed
    except ImportError:
        return None, "not measured: needs torch (pip install 'ssa-service[train]')"
    from ssa_core.export.folder import load_trained
    from ssa_core.model.tokenize import encode_examples
    from ssa_core.train.pipeline import explanation_summary, pick_device

    model, tokenizer, meta = load_trained(model_dir)
    encoded = encode_examples(tokenizer, dataset.examples[:sentences], int(meta["max_length"]))
    where = pick_device(device)
    scores = explanation_summary(model.to(where), encoded, tokenizer.pad_token_id or 0, where,
                                 int(TRAIN_DEFAULTS["probe_batch_tokens"]))
    if scores is None:
        return None, "not measured"
    return scores.to_dict(), None


def check_plot(args: argparse.Namespace, task: str) -> None:
    """Refuse --plot early: for regression models, and when matplotlib is not installed."""
    if args.plot is None:
        return
    if task == "regression":
        raise CliError("--plot draws the confusion matrix of a classifier; this is a regression model")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("--plot needs matplotlib, which is not installed: pip install matplotlib") from None


def plot_confusion(scores: ClassificationScores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(3.0, 0.6 * len(scores.labels) + 2.0)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(scores.confusion, cmap="Blues")
    ticks = range(len(scores.labels))
    axes.set_xticks(ticks, scores.labels, rotation=45, ha="right")
    axes.set_yticks(ticks, scores.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    for row, counts in enumerate(scores.confusion):
        for column, count in enumerate(counts):
            axes.text(column, row, str(count), ha="center", va="center")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def show(console: Console, report: EvalReport) -> None:
    console.print(f"[bold]{report.model_id}[/bold] ({report.method}, version {report.version}) on {report.data}: "
                  f"{report.examples} examples" + (f", {report.truncated} truncated" if report.truncated else ""))
    if report.regression is not None:
        r = report.regression
        console.print(f"Pearson {r.pearson:.4f}   Spearman {r.spearman:.4f}   MSE {r.mse:.4f}")
    if report.classification is not None:
        c = report.classification
        console.print(f"accuracy {c.accuracy:.4f}   macro-F1 {c.macro_f1:.4f}   MCC {c.mcc:.4f}   ECE {c.ece:.4f}")
        per_class = Table("class", "precision", "recall", "F1", "support", title="Per class")
        for s in c.classes:
            per_class.add_row(s.label, f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", str(s.support))
        console.print(per_class)
        matrix = Table("gold \\ predicted", *c.labels, title="Confusion matrix")
        for label, counts in zip(c.labels, c.confusion, strict=True):
            matrix.add_row(label, *(str(n) for n in counts))
        console.print(matrix)
    if report.explanations is not None:
        e = report.explanations
        console.print(f"Explanations ({e['sentences']} sentences, served attention): entropy {e['entropy']:.3f}, "
                      f"top-20 % share {e['top20_share']:.3f}, comprehensiveness@20 % {e['comprehensiveness_20']:.3f}"
                      f" (random {e['random_comprehensiveness_20']:.3f}), sufficiency@20 % {e['sufficiency_20']:.3f}")
    elif report.explanations_note:
        console.print(f"Explanations: {report.explanations_note}")
    if report.robustness is not None:
        show_robustness(console, report.robustness)


def show_robustness(console: Console, report: dict[str, Any]) -> None:
    console.print(f"Robustness: {report['note']}")
    table = Table("inserted", "rows", "clean acc.", "misleading acc.", "flip rate", "mean |Δp|",
                  "clause attention (right / wrong)", title="Robustness to misleading spans")
    for key in ("offtopic", "fragments"):
        s = report.get(key)
        if not s:
            continue
        ratios = " / ".join("-" if s[k] is None else f"{s[k]:.2f}"
                            for k in ("clause_attention_ratio_right", "clause_attention_ratio_wrong"))
        table.add_row(key, str(s["rows"]), f"{s['clean_accuracy']:.4f}", f"{s['misleading_accuracy']:.4f}",
                      f"{s['flip_rate']:.4f}", f"{s['mean_abs_delta']:.4f}", ratios)
    console.print(table)


def run_eval(args: argparse.Namespace) -> int:
    predictor = Predictor.load(args.model, provider=args.provider)
    check_plot(args, predictor.task)
    columns = DatasetColumns(text=args.text_column, text_pair=args.pair_column, label=args.label_column)
    dataset = load_dataset(args.data, columns=columns, task=predictor.task)  # type: ignore[arg-type]
    report = evaluate(predictor, dataset)
    explained, note = explanation_scores(args.model, dataset, predictor.method, predictor.task,
                                         args.explain_sentences, args.device)
    report = dataclasses.replace(report, explanations=explained, explanations_note=note)
    if args.robustness:
        pool = load_pool(args.distractors) if args.distractors is not None else shipped_pool("report")
        measured = robustness_report(predictor, dataset.examples, pool, len(dataset.examples))
        report = dataclasses.replace(report, robustness=measured.to_dict())
    if args.plot is not None and report.classification is not None:
        plot_confusion(report.classification, args.plot)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        show(Console(), report)
        if args.plot is not None:
            Console().print(f"confusion matrix written to {args.plot}")
    return 0
