"""Handler of `ssa predict`: torch-free (ONNX Runtime). Tokens shaded by SSA attention, or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from rich.console import Console
from rich.text import Text

from ssa_core.cli.predict_io import output_format, read_items, render
from ssa_core.data.textspans import Span
from ssa_core.runtime.predictor import Prediction, Predictor


def shade(spans: list[Span], text: str, key: str) -> Text:
    """The text with each span's background shaded by its score (relative to the strongest span)."""
    values = [getattr(s, key) or 0.0 for s in spans]
    top = max(values, default=0.0) or 1.0
    out = Text()
    cursor = 0
    for span, value in zip(spans, values, strict=True):
        out.append(text[cursor : span.start])
        level = int(255 - 175 * (value / top))
        out.append(text[span.start : span.end], style=f"black on rgb(255,{level},{level})")
        cursor = span.end
    out.append(text[cursor:])
    return out


def show(console: Console, item: str | tuple[str, str], p: Prediction, method: str) -> None:
    scores = ", ".join(f"{k} {v:.3f}" for k, v in p.scores.items())
    console.print(f"[bold]{p.label}[/bold] ({p.score:.3f}; {scores}){' [truncated]' if p.truncated else ''}")
    words = p.words or []
    key = "attention" if method in ("layer", "hybrid") else "importance"
    if method == "baseline":
        console.print("  (baseline model: no token-level SSA signal)")
        return
    texts = (item,) if isinstance(item, str) else item
    for segment, text in enumerate(texts):
        console.print("  ", shade([w for w in words if w.segment == segment], text, key))
    ranked = sorted(words, key=lambda w: getattr(w, key) or 0.0, reverse=True)[:8]
    console.print("  " + key + ": " + "  ".join(f"{w.text} {getattr(w, key):.3f}" for w in ranked))


def run_file(args: argparse.Namespace, predictor: Predictor) -> int:
    """--input FILE: every row predicted, written as JSONL or CSV (to --output, or JSONL on stdout)."""
    fmt = output_format(args.output)
    items = read_items(args.input, predictor.pair, args.text_column, args.pair_column)
    predictions = predictor.predict(items, truncate=not args.no_truncate, return_tokens=False, return_words=False)
    text = render(items, predictions, fmt, predictor.labels)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"{len(items)} predictions written to {args.output}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    if bool(args.texts) == (args.input is not None):
        raise ValueError("give either TEXTS or --input FILE")
    if args.output is not None and args.input is None:
        raise ValueError("--output goes with --input")
    predictor = Predictor.load(args.model, provider=args.provider)
    if args.input is not None:
        return run_file(args, predictor)
    items: list[str | tuple[str, str]] = [(t, args.pair) if args.pair else t for t in args.texts]
    if predictor.pair and not args.pair:
        raise ValueError("this model takes text pairs: give the second text with --pair")
    predictions = predictor.predict(items, truncate=not args.no_truncate)
    if args.json:
        payload = {"model": {"id": predictor.model_id, "version": predictor.version},
                   "predictions": [dataclasses.asdict(p) for p in predictions]}
        print(json.dumps(payload, indent=2))
        return 0
    console = Console()
    for item, prediction in zip(items, predictions, strict=True):
        show(console, item, prediction, predictor.method)
    return 0
