"""The `ssa` command: train, label, export, predict and eval; `serve` and `worker` come from the service and worker
packages through the `ssa.commands` entry point group. Bad arguments or files: a clear message and exit status 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from ssa_core.config import LABEL_MODES, METHODS, MODEL_DEFAULTS, TRAIN_DEFAULTS
from ssa_core.errors import ConfigError
from ssa_core.recipes import DEFAULT_RECIPE, RECIPE_NAMES, recipe
from ssa_core.runtime.modelmeta import SSA_FILE
from ssa_core.vocabulary import (
    ATTENTION_SCORES,
    DISTRACTOR_SOURCES,
    METRICS,
    ONNX_VARIANTS,
    PROVIDERS,
    REVIEW_FORMATS,
    TASKS,
)

USAGE_ERROR = 2
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem with the user's arguments or files; printed as one message, exit status 2."""


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def model_folder(value: str) -> Path:
    path = Path(value)
    if not (path / SSA_FILE).is_file():
        raise argparse.ArgumentTypeError(f"{value} is not a trained model folder (no {SSA_FILE} in it)")
    return path


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_data_columns(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset columns (auto-detected when not given)")
    group.add_argument("--text-column", help="column with the text (default: text, else sentence1)")
    group.add_argument("--pair-column", help="column with the second text of a pair (default: text_pair/sentence2)")
    group.add_argument("--label-column", default="label", help="column with the label (default: label)")
    group.add_argument("--task", choices=TASKS, help="default: inferred from labels")


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    T, R = TRAIN_DEFAULTS, recipe(DEFAULT_RECIPE)
    p = sub.add_parser(
        "train",
        help="train an SSA model and write a model folder (weights, ONNX, metrics, labels)",
        description="Fine-tune an encoder with Self-Supervised Attention and export it.",
    )
    p.add_argument("train", type=existing_file, help="training data: JSONL, CSV, TSV or Parquet; or a Label Studio "
                   "export (.json) whose annotated spans train as reviewed rationales")
    p.add_argument("--dev", type=existing_file, help="dev data (default: a stratified 10%% split of TRAIN)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the model")
    p.add_argument("--method", choices=METHODS, default="hybrid", help="SSA method (default: hybrid)")
    p.add_argument("--recipe", choices=RECIPE_NAMES, default=DEFAULT_RECIPE,
                   help="named set of settings: released (the released SSA code), graded (today's default), robust "
                   "(graded + distractor copies, docs/ROBUSTNESS.md); explicit flags override it "
                   "(default: %(default)s)")
    p.add_argument("--distractors", type=existing_file, metavar="FILE",
                   help="your own pool of off-topic clauses for distractor copies: .txt (one per line), .jsonl "
                   "({\"text\": ...}) or a pool .json (default: the shipped training pool)")
    p.add_argument("--distractor-share", type=float, default=None,
                   help="share of rows that also train as a copy with an inserted distractor span, from iteration 1 "
                   f"on (default: the recipe's; {R.value('distractor_share')} for {DEFAULT_RECIPE})")
    p.add_argument("--distractor-sources", choices=DISTRACTOR_SOURCES, default=None,
                   help="where the inserted spans come from: the clause pool, words of a row of another class, or "
                   f"both (default: the recipe's; {R.value('distractor_sources')} for {DEFAULT_RECIPE})")
    p.add_argument(
        "--iterations", type=positive_int, default=T["iterations"], help="SSA iterations (default: %(default)s)"
    )
    p.add_argument("--max-examples", type=positive_int, help="use only the first N training rows")
    p.add_argument("--rationales", type=existing_file,
                   help="reviewed rationales: a Label Studio export (JSON list of tasks whose annotations mark "
                   "spans of data.text; data.row is the train file's row number); they supervise those rows' tokens "
                   "in place of weak labels (a train file's rationale_spans column does the same)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    p.add_argument("--base-model", help="encoder: local folder or hub id (default: the shipped all-MiniLM-L6-v2)")
    p.add_argument("--lambda-tok", type=float, default=None,
                   help=f"token-loss weight λ (default: the recipe's; {R.value('lambda_tok')} for {DEFAULT_RECIPE})")
    p.add_argument("--tau", type=float, default=None,
                   help=f"SSA keep threshold τ (default: the recipe's; {R.value('tau')} for {DEFAULT_RECIPE})")
    p.add_argument("--cls-weight", type=float, default=None,
                   help=f"[CLS] share w of the sentence vector (default: the recipe's; {R.value('cls_weight')} for "
                   f"{DEFAULT_RECIPE})")
    p.add_argument(
        "--learning-rate", type=float, default=T["learning_rate"], help="AdamW learning rate (default: %(default)s)"
    )
    p.add_argument("--batch-size", type=positive_int, default=T["batch_size"], help="batch size (default: %(default)s)")
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=MODEL_DEFAULTS["max_length"],
        help="max wordpieces per input (default: %(default)s)",
    )
    p.add_argument("--label-mode", choices=LABEL_MODES, default=None,
                   help=f"weak-label rule (default: the recipe's; {R.value('label_mode')} for {DEFAULT_RECIPE}; "
                   "keep = the released code's)")
    p.add_argument("--attention-scores", choices=ATTENTION_SCORES, default=None,
                   help="what the SSA layer softmaxes: unbounded token scores, or p_i over the kept set as the "
                   f"released code (default: the recipe's; {R.value('attention_scores')} for {DEFAULT_RECIPE})")
    p.add_argument(
        "--metric",
        choices=METRICS,
        help="dev metric for best-iteration selection (default: accuracy / pearson)",
    )
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--no-resume", action="store_true", help="ignore a checkpoint left in OUT by an earlier run")
    add_data_columns(p)
    p.set_defaults(handler=_lazy("ssa_core.cli.train", "run_train"))


def add_label_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="label a dataset with a trained model: prediction, attention and probe scores per row",
        description="One record per input row (the label job's records): the prediction and scores, the served "
        "attention and a probe score per wordpiece and word (the drop of the predicted class's probability when "
        "the word is masked), flip labels against gold labels when the file has them, character offsets. Written "
        "as JSONL (--out) and Parquet (--parquet). --weak writes the training probe's weak labels instead.",
    )
    p.add_argument("model", type=model_folder, help="trained model folder")
    p.add_argument("data", type=existing_file, help="dataset to label (JSONL, CSV, TSV or Parquet; labels optional)")
    p.add_argument("--out", type=Path, required=True, help="output JSONL file")
    p.add_argument("--parquet", type=Path, help="also write the records as Parquet to this file")
    p.add_argument("--format", choices=("jsonl", *REVIEW_FORMATS), default="jsonl",
                   help="--out as label records (jsonl), Label Studio tasks (a JSON array; the labeling config is "
                   "written next to it as OUT.label_config.xml) or Argilla settings and records (default: jsonl)")
    p.add_argument("--probes", type=int, default=64, help="words probed per row at most; 0: attention only "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="inputs per ONNX Runtime run "
                   "(default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default: one per core)")
    weak = p.add_argument_group("weak labels of the training probe (--weak)")
    weak.add_argument("--weak", action="store_true", help="write the training probe's weak labels (torch)")
    weak.add_argument("--label-mode", choices=LABEL_MODES, default=TRAIN_DEFAULTS["label_mode"],
                      help="weak-label rule (default: %(default)s)")
    weak.add_argument("--rounds", type=positive_int, default=4, help="mask draws per example (default: 4)")
    weak.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    weak.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    add_data_columns(p)
    p.set_defaults(handler=_lazy("ssa_core.cli.label", "run_label"))


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export model.onnx again (parity-checked), or add its int8 or fp16 variant (--quantize int8|fp16)",
        description="Re-export model.onnx from the folder's weights and check it against PyTorch; or, with "
        "--quantize int8, write model.int8.onnx beside it (dynamic quantization), or with --quantize fp16, "
        "model.fp16.onnx (float16, for the CUDA provider), kept only when its predictions agree with fp32's on --data "
        "(model.onnx is left as it is).",
    )
    p.add_argument("model", type=model_folder, help="trained model folder")
    p.add_argument("--data", type=existing_file,
                   help="texts for the check, e.g. the dev set (default: the shipped sentiment sample)")
    p.add_argument("--quantize", choices=ONNX_VARIANTS[1:],
                   help="add the int8 or fp16 variant instead of exporting fp32 again")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="--quantize: the share of --data inputs on which the variant must predict fp32's label "
                   "(default 0.99 for int8, 0.999 for fp16); below it nothing is written and the command exits with "
                   "status 3, printing the measured share")
    p.add_argument("--max-score-diff", type=float, default=0.01,
                   help="--quantize fp16: the most the predicted class's probability may move on any input "
                   "(default 0.01); beyond it nothing is written (status 3). The check runs on the CUDA provider "
                   "where this host can use it, else on the CPU provider")
    p.set_defaults(handler=_lazy("ssa_core.cli.export", "run_export"))


def add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict texts and show per-token SSA attention",
        description="Predict with the ONNX model; shows tokens shaded by attention, or JSON.",
    )
    p.add_argument("model", type=model_folder, help="trained model folder")
    p.add_argument("texts", nargs="*", help="one or more texts (or --input FILE)")
    p.add_argument("--pair", help="second text of a pair (applied to every TEXT)")
    p.add_argument("--input", type=existing_file,
                   help="predict every row of a JSONL, CSV, TSV or Parquet file (column `text`, and `text_pair` "
                        "for pair models; see --text-column/--pair-column) instead of TEXTS")
    p.add_argument("--output", type=Path, help="with --input: write the predictions here, as JSONL or CSV by the "
                                               "extension (default: JSONL on stdout)")
    p.add_argument("--text-column", help="with --input: the column with the text (default: text, else sentence1)")
    p.add_argument("--pair-column", help="with --input: the second text's column (default: text_pair/sentence2)")
    p.add_argument("--json", action="store_true", help="print JSON instead of shaded tokens")
    p.add_argument("--no-truncate", action="store_true", help="fail on inputs longer than the model's max length")
    p.add_argument("--provider", choices=PROVIDERS, default="auto", help="ONNX Runtime provider")
    p.set_defaults(handler=_lazy("ssa_core.cli.predict", "run_predict"))


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a model folder on a labelled dataset (accuracy, macro-F1, per class, confusion, ECE)",
        description="Evaluate a trained model folder on labelled data through the ONNX runtime: accuracy, macro-F1, "
                    "MCC, per-class precision/recall, the confusion matrix and calibration (ECE) for classifiers; "
                    "Pearson, Spearman and MSE for regression; and the explanation scores of the served SSA "
                    "attention (layer/hybrid classifiers; needs torch).",
    )
    p.add_argument("model", type=model_folder, help="trained model folder")
    p.add_argument("data", type=existing_file, help="labelled data: JSONL, CSV, TSV or Parquet")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.add_argument("--robustness", action="store_true",
                   help="also report misleading against clean accuracy, the flip rate and the clause-attention ratio "
                   "with an off-topic clause or words of another class inserted into every row (docs/ROBUSTNESS.md)")
    p.add_argument("--distractors", type=existing_file, metavar="FILE",
                   help="with --robustness: the clauses to insert (.txt, .jsonl or a pool .json; default: the "
                   "shipped report pool)")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also write the confusion matrix as a PNG (matplotlib)")
    p.add_argument("--explain-sentences", type=int, default=TRAIN_DEFAULTS["explain_sentences"],
                   help="examples on which the explanation scores are measured, 0 for none (default: %(default)s)")
    p.add_argument("--provider", choices=PROVIDERS, default="auto", help="ONNX Runtime provider")
    p.add_argument("--device", help="torch device for the explanation scores (default: cuda when available)")
    group = p.add_argument_group("dataset columns (auto-detected when not given)")
    group.add_argument("--text-column", help="column with the text (default: text, else sentence1)")
    group.add_argument("--pair-column", help="column with the second text of a pair (default: text_pair/sentence2)")
    group.add_argument("--label-column", default="label", help="column with the label (default: label)")
    p.set_defaults(handler=_lazy("ssa_core.cli.eval", "run_eval"))


def _lazy(module: str, name: str) -> Handler:
    """Import heavy modules (torch) only for the command that needs them."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), name)(args))

    return handler


def add_plugins(sub: argparse._SubParsersAction) -> None:
    """`serve`, `worker`: registered by the service and worker packages (entry point group `ssa.commands`)."""
    for entry in sorted(entry_points(group="ssa.commands"), key=lambda e: e.name):
        try:
            entry.load()(sub)
        except ImportError as exc:  # a package that is not installed in this environment
            logging.getLogger("ssa.cli").debug("command %s unavailable: %s", entry.name, exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssa", description="Self-Supervised Attention: train, label, serve.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_train_parser, add_label_parser, add_export_parser, add_predict_parser, add_eval_parser):
        add(sub)
    add_plugins(sub)
    return parser


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_libraries()
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("ssa: interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError, ValueError, OSError) as exc:
        print(f"ssa {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
