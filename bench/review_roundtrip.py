"""Review round trip, measured: does training on reviewed rationales move the model off a misleading clause?

A simulated review that does not come from the model: the training set is --clean rows of the movie-sentiment train
file plus --misleading rows of the misleading-clause dev file (bench/misleading.py: each sentence with an inserted
clause whose wording pulls toward the wrong label; the gold label is unchanged). The reviewers "remove the inserted
clause from the rationale": each misleading row's rationale is the original sentence, i.e. its text without the
clause (`rationale_spans`, one span; the clause's span is recorded by bench/misleading.py). Two runs, the same seed
and config: without the reviews (every row on weak labels) and with them (the misleading rows on their reviewed
targets). Each is scored on the misleading-clause test file (built from the movie-sentiment test file): accuracy,
and the clause-attention ratio (served attention on the clause / the clause's share of wordpieces; 1.0 = no
discrimination, lower = less attention on the clause), over all inputs and over those the model gets right/wrong.

    nice -n 19 python bench/review_roundtrip.py            # writes bench/results/review.md
    python bench/review_roundtrip.py --clean 400 --misleading 100 --iterations 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.misleading import MisleadingRow, build_with_spans  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "movie-sentiment"
OUT = ROOT / "bench" / "results" / "review.md"


def reviewed_span(row: MisleadingRow) -> list[list[int]]:
    """The reviewed rationale of a misleading row: its text without the inserted clause (and edge spaces)."""
    start, end = row.clause
    left, right = (end, len(row.text)) if start == 0 else (0, start)
    piece = row.text[left:right]
    left += len(piece) - len(piece.lstrip(" ,;:()"))
    right -= len(piece) - len(piece.rstrip(" ,;:()"))
    return [[left, right]]


def model_rationale_spans(model_dir: Path, rows: list[MisleadingRow]) -> list[list[list[int]] | None]:
    """`--review rationale`: the words the unreviewed model's rationale rests on (ssa_core.labeling.review' rule,
    from a label run through ONNX Runtime), less those inside the inserted clause; None where nothing is left."""
    from ssa_core.data.datasets import Example
    from ssa_core.labeling.labeler import Labeler, LabelOptions
    from ssa_core.labeling.review import rationale_words
    from ssa_core.runtime.predictor import Predictor

    predictor = Predictor.load(model_dir, provider="cpu", intra_op_threads=1)
    labeler = Labeler(predictor, LabelOptions(), labelled=True)
    examples = [Example(i, i + 1, r.text, None, r.label) for i, r in enumerate(rows)]
    spans: list[list[list[int]] | None] = []
    for first in range(0, len(examples), 64):
        for record, row in zip(labeler.label(examples[first:first + 64], first), rows[first:first + 64],
                               strict=True):
            kept = [[w.start, w.end] for w in rationale_words(record)
                    if not (w.start < row.clause[1] and row.clause[0] < w.end)]
            spans.append(kept or None)
    return spans


def train_rows(clean: int, misleading: int, reviewed: bool, model_dir: Path | None = None) -> list[dict[str, Any]]:
    lines = (DATA / "train.jsonl").read_text(encoding="utf-8").splitlines()
    rows: list[dict[str, Any]] = [json.loads(line) for line in lines[:clean]]
    bad = build_with_spans(DATA / "dev.jsonl")[:misleading]
    reviews: list[Any] = [None] * len(bad)
    if reviewed:
        reviews = [reviewed_span(row) for row in bad] if model_dir is None else model_rationale_spans(model_dir, bad)
    for row, spans in zip(bad, reviews, strict=True):
        item: dict[str, Any] = {"text": row.text, "label": row.label}
        if spans:
            item["rationale_spans"] = spans
        rows.append(item)
    return rows


def train(rows: list[dict[str, Any]], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from ssa_core.config import ModelConfig, TrainConfig, default_base_model
    from ssa_core.data.datasets import load_dataset, stratified_split
    from ssa_core.train.pipeline import train_model

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = load_dataset(path)
    train_split, dev = stratified_split(data, seed=args.seed)
    model_cfg = ModelConfig(base_model=default_base_model(), method="hybrid", max_length=args.max_length,
                            labels=data.labels)
    train_cfg = TrainConfig(iterations=args.iterations, seed=args.seed, explain_sentences=0)
    started = time.perf_counter()
    result = train_model(train_split, dev, model_cfg, train_cfg, folder / "model", device="cpu")
    return {"seconds": time.perf_counter() - started, "metrics": result.metrics.to_dict(), "dir": folder / "model"}


def score(model_dir: Path, test: list[MisleadingRow]) -> dict[str, float]:
    import torch

    from ssa_core.data.datasets import Example
    from ssa_core.export.folder import load_trained
    from ssa_core.model.tokenize import encode_examples
    from ssa_core.train.explanations import probabilities, served_attention
    from ssa_core.train.probing import originals_of

    model, tokenizer, _ = load_trained(model_dir)
    examples = [Example(i, i + 1, r.text, None, r.label) for i, r in enumerate(test)]
    encoded = encode_examples(tokenizer, examples, model.config.max_length)
    pad, device = tokenizer.pad_token_id or 0, torch.device("cpu")
    probs = probabilities(model, originals_of(encoded), pad, device, 16384)
    right = probs.argmax(axis=-1) == np.asarray([model.config.labels.index(r.label) for r in test])
    ratios: dict[bool, list[float]] = {True: [], False: []}
    for e, row, weights, ok in zip(encoded, test, served_attention(model, encoded, pad, device), right, strict=True):
        inside = np.asarray([row.clause[0] <= p.start and p.end <= row.clause[1] for p in e.positions])
        if weights.sum() <= 0 or not inside.any() or inside.all():
            continue
        ratios[bool(ok)].append(float(weights[inside].sum() / weights.sum() / inside.mean()))
    every = ratios[True] + ratios[False]
    return {"accuracy": float(right.mean()), "ratio": float(np.mean(every)),
            "ratio_right": float(np.mean(ratios[True])) if ratios[True] else float("nan"),
            "ratio_wrong": float(np.mean(ratios[False])) if ratios[False] else float("nan"), "n": len(test)}


def reading(results: dict[str, dict[str, Any]], test_rows: int) -> list[str]:
    """The comparison in words, computed from the two arms' numbers."""
    off, on = results["without reviews"], results["with reviews"]

    def points(a: float, b: float) -> str:
        diff = 100 * (b - a)
        return f"{abs(diff):.1f} points {'below' if diff < 0 else 'above'}" if round(diff, 1) else "level with"

    right = round((on["accuracy"] - off["accuracy"]) * test_rows)
    out = [f"Reading (computed): with reviews, misleading-test accuracy is {points(off['accuracy'], on['accuracy'])} "
           f"the run without ({off['accuracy']:.1%} -> {on['accuracy']:.1%}, {abs(right)} of {test_rows} rows "
           f"{'more' if right >= 0 else 'fewer'} right); dev accuracy is {points(off['dev'], on['dev'])} it "
           f"({off['dev']:.3f} -> {on['dev']:.3f}); the clause-attention ratio goes {off['ratio']:.2f} -> "
           f"{on['ratio']:.2f}."]
    if on["dev_by_iteration"] and off["dev_by_iteration"]:
        out.append(f"Iteration 0 (plain fine-tuning) dev accuracy: {off['dev_by_iteration'][0]:.3f} without reviews, "
                   f"{on['dev_by_iteration'][0]:.3f} with; the model kept is iteration {off['best']} without and "
                   f"{on['best']} with.")
    even = [e for e in on["even"] if e is not None]
    if even:
        out.append(f"Reviewed rows whose graded target fell back to the even 1/0 target (their reviewed words carried "
                   f"no probe weight), per probing iteration: {', '.join(str(e) for e in even)} of {on['human_rows']}.")
    if off["seconds"] != off["seconds"]:
        out.append("Training s \"nan\": the unreviewed model was reused from --work (--reuse), not trained here.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", type=int, default=400, help="clean movie-sentiment train rows (default: 400)")
    parser.add_argument("--misleading", type=int, default=100, help="misleading dev rows (default: 100)")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--test-rows", type=int, default=0, help="misleading test rows scored (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ssa-review-roundtrip"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--review", choices=["sentence", "rationale"], default="sentence",
                        help="the reviewed rationale of a misleading row: its whole text without the clause "
                        "(sentence), or the unreviewed model's rationale words without those in the clause "
                        "(rationale; needs the unreviewed run first) (default: sentence)")
    parser.add_argument("--reuse", action="store_true", help="reuse a finished unreviewed model in --work")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    test = build_with_spans(DATA / "test.jsonl")
    test = test[: args.test_rows] if args.test_rows else test
    results = {}
    unreviewed = args.work / "without-reviews" / "model"
    for arm, reviewed in (("without reviews", False), ("with reviews", True)):
        if not reviewed and args.reuse and (unreviewed / "metrics.json").is_file():
            run = {"seconds": float("nan"), "dir": unreviewed,
                   "metrics": json.loads((unreviewed / "metrics.json").read_text())}
        else:
            rows = train_rows(args.clean, args.misleading, reviewed,
                              unreviewed if reviewed and args.review == "rationale" else None)
            run = train(rows, args.work / arm.replace(" ", "-"), args)
        history = run["metrics"].get("iterations", [])
        results[arm] = {**score(run["dir"], test), "seconds": run["seconds"],
                        "human_rows": run["metrics"]["human_rationales"]["rows"],
                        "dev": run["metrics"]["dev"]["accuracy"], "best": run["metrics"].get("best_iteration"),
                        "dev_by_iteration": [h["dev"]["accuracy"] for h in history],
                        "even": [h["probe"].get("reviewed_even") for h in history if "probe" in h]}
        print(arm, results[arm], flush=True)
    load_after = os.getloadavg()
    command = "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)) if Path(sys.argv[0]).is_absolute()
                                    else sys.argv[0], *sys.argv[1:]])
    lines = [
        "# Review round trip: reviewed rationales vs weak labels on the misleading clause", "",
        f"Date: {datetime.now(UTC).isoformat(timespec='seconds')}. Machine: {platform.node()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}. "
        f"Load average (1/5/15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
        f"{', '.join(f'{v:.2f}' for v in load_after)} (a shared machine: timings are not clean).", "",
        f"Command: `{command}`", "",
        f"Training: {args.clean} clean movie-sentiment train rows + {args.misleading} misleading-clause dev rows "
        f"(stratified 10 % dev split off the whole), hybrid on the shipped all-MiniLM-L6-v2, {args.iterations} "
        f"iterations, max length {args.max_length}, seed {args.seed}, default TrainConfig otherwise (graded). "
        + ("With reviews: each misleading row's `rationale_spans` is its text without the inserted clause (a "
           "simulated reviewer who removes the clause from the rationale; not derived from any model). "
           if args.review == "sentence" else
           "With reviews: each misleading row's `rationale_spans` are the words the unreviewed model's rationale "
           "rests on (ssa_core.labeling.review' rule: top 20 % by probe score) less those inside the inserted clause "
           "(a simulated reviewer who removes the clause from the model's rationale; rows with nothing left stay "
           "unreviewed). ") +
        f"Scored on {len(test)} misleading-clause test rows (bench/misleading.py on the movie-sentiment test file).",
        "",
        "| run | reviewed train rows | dev accuracy | dev accuracy by iteration | best iteration | "
        "misleading test accuracy | clause-attention ratio (all) | ratio, right | ratio, wrong | training s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in results.items():
        lines.append(f"| {arm} | {r['human_rows']} | {r['dev']:.4f} | "
                     f"{' / '.join(f'{d:.3f}' for d in r['dev_by_iteration'])} | {r['best']} | {r['accuracy']:.4f} | "
                     f"{r['ratio']:.3f} | {r['ratio_right']:.3f} | {r['ratio_wrong']:.3f} | {r['seconds']:.0f} |")
    lines += ["", "Clause-attention ratio: served attention on the inserted clause / the clause's share of "
              "wordpieces (1.0 = no discrimination; lower = the model looks less at the clause). One seed, one "
              "small run: a direction, not a significance test.", "", *reading(results, len(test)), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
