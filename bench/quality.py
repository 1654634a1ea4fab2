"""Quality benchmark: SSA variants vs the baseline on real data, several seeds, dev/test (and misleading-words)
accuracy as mean ± sd. Each finished run is cached as JSON (bench/results/run-records/, committed), with the
explanation measurements of bench/explain.py, so a partly finished grid resumes where it stopped.

    python bench/quality.py --grid required            # the issue's grid -> bench/results/quality.md
    python bench/quality.py --grid study               # what makes SSA pay off -> bench/results/quality-study.md
    python bench/quality.py --report                   # train nothing: the tables from the committed records

The 2000-row runs of the required grid are trained only where CUDA is present (or with --cpu-2000): on 2 CPU cores
they take hours each. Reports list every run of the grid that has no record yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
MISLEADING = ROOT / "bench" / "data" / "movie-sentiment-misleading-test.jsonl"
SEEDS = (1, 2, 3)
# The recipe shared by every arm (lr 5e-5, batch 32, 3 iterations, max length 128); the rest is each arm's, and the
# product default ("ssa") is ModelConfig / TrainConfig's defaults as they stand.
BASE = {"learning_rate": 5e-5, "batch_size": 32, "iterations": 3, "max_length": 128}
# The released code's recipe: 0/1 `keep` labels, softmax of p_i over K, uniform draw of probed copies.
RELEASED = {"label_mode": "keep", "attention_scores": "probability", "share_balance": "none", "lambda_tok": 0.3,
            "pool_transform": "none"}
# The first graded recipe (the product default until the study below chose λ 0.1 and the pooler transform).
FIRST_GRADED = {"lambda_tok": 0.3, "pool_transform": "none"}
MODEL_KEYS = {"lambda_tok", "tau", "cls_weight", "pool_transform", "max_length", "attention_temperature",
              "attention_scores", "detach_token_head"}


@dataclass(frozen=True)
class Arm:
    """One configuration: a method plus overrides of the base recipe."""

    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Run:
    dataset: str
    size: int
    arm: Arm
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}-{self.size}-{self.arm.name}-s{self.seed}"


BASELINE = Arm("baseline", "baseline")
PRODUCT = Arm("ssa", "hybrid")  # the product default: graded labels, logit attention
HYBRID_RELEASED = Arm("hybrid", "hybrid", RELEASED)
DATASETS = ("movie-sentiment", "trec6")


def explain_grid() -> list[Run]:
    """Baseline vs the product default on both datasets (3 seeds), then the released hybrid."""
    runs = [Run(d, 1000, arm, seed) for seed in SEEDS for d in DATASETS for arm in (BASELINE, PRODUCT)]
    return runs + [Run(d, 1000, HYBRID_RELEASED, seed) for seed in SEEDS for d in DATASETS]


def required_grid() -> list[Run]:
    """The issue's grid, smallest runs first so that a partly finished grid already answers the main question."""
    runs = explain_grid()
    others = (Arm("co", "co", RELEASED), Arm("layer", "layer", RELEASED))
    runs += [Run("movie-sentiment", 1000, arm, seed) for seed in SEEDS for arm in others]
    pair = (BASELINE, PRODUCT)
    runs += [Run(d, 2000, arm, seed) for d in DATASETS for seed in SEEDS for arm in pair]
    return runs


STUDY_ARMS = (
    Arm("baseline", "baseline"),
    Arm("hybrid", "hybrid", RELEASED),
    Arm("hybrid+pooler", "hybrid", {**RELEASED, "pool_transform": "pooler"}),
    Arm("hybrid+augment", "hybrid", {**RELEASED, "schedule": "augment"}),
    Arm("hybrid+ignore-originals", "hybrid", {**RELEASED, "original_labels": "ignore"}),
    Arm("hybrid+flip", "hybrid", {**RELEASED, "label_mode": "flip"}),
    Arm("hybrid-lambda0.1", "hybrid", {**RELEASED, "lambda_tok": 0.1}),
    Arm("hybrid+contrast", "hybrid", {**RELEASED, "label_mode": "contrast", "original_labels": "ignore"}),
    Arm("hybrid+contrast+T0.1", "hybrid", {**RELEASED, "label_mode": "contrast", "original_labels": "ignore",
                                          "attention_temperature": 0.1}),
    Arm("hybrid+balanced", "hybrid", {**RELEASED, "share_balance": "class"}),
    Arm("baseline-5it", "baseline", {"iterations": 5}),
    Arm("hybrid-5it", "hybrid", {**RELEASED, "iterations": 5}),
    Arm("hybrid+contrast-5it", "hybrid", {**RELEASED, "label_mode": "contrast", "original_labels": "ignore",
                                         "iterations": 5}),
    # the graded-label, logit-attention family (the product default is "ssa"; dev decides among these)
    Arm("ssa-first", "hybrid", FIRST_GRADED),
    Arm("ssa-w0", "hybrid", {**FIRST_GRADED, "cls_weight": 0.0}),
    Arm("ssa-lambda1", "hybrid", {**FIRST_GRADED, "lambda_tok": 0.9}),
    Arm("ssa-lambda0.1", "hybrid", {**FIRST_GRADED, "lambda_tok": 0.1}),
    Arm("ssa+pooler", "hybrid", {**FIRST_GRADED, "pool_transform": "pooler"}),
    Arm("ssa+detach", "hybrid", {**FIRST_GRADED, "detach_token_head": True}),
    Arm("ssa", "hybrid"),
    Arm("ssa-share-up", "hybrid", {"share_step": 0.4}),
    Arm("ssa+keep", "hybrid", {"label_mode": "keep", "share_balance": "class"}),
)


def study_grid() -> list[Run]:
    return [Run(d, 1000, arm, seed) for seed in SEEDS[: ARGS.seeds] for d in DATASETS for arm in STUDY_ARMS]


def execute(run: Run, threads: int) -> dict[str, Any]:
    """Train one arm and measure dev, test and (sentiment) misleading-test metrics of its best iteration."""
    import torch

    from ssa_core.config import ModelConfig, TrainConfig, default_base_model
    from ssa_core.data.datasets import head, load_dataset
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import encode_examples, load_tokenizer, structural_special_ids
    from ssa_core.train.pipeline import pick_device, seed_everything
    from ssa_core.train.trainer import Trainer

    torch.set_num_threads(threads)
    device = pick_device()  # CUDA where present
    load_at_start = os.getloadavg()[0]
    settings = {**BASE, **run.arm.overrides}
    train = head(load_dataset(DATA / run.dataset / "train.jsonl"), run.size)
    splits = {name: load_dataset(DATA / run.dataset / f"{name}.jsonl") for name in ("dev", "test")}
    if run.dataset == "movie-sentiment":
        splits["misleading"] = load_dataset(MISLEADING)
    model_cfg = ModelConfig(base_model=default_base_model(), method=run.arm.method, labels=train.labels,
                            **{k: v for k, v in settings.items() if k in MODEL_KEYS})
    train_cfg = TrainConfig(seed=run.seed, **{k: v for k, v in settings.items() if k not in MODEL_KEYS})
    seed_everything(run.seed)
    tokenizer = load_tokenizer(model_cfg.base_model)
    model = build_model(model_cfg, structural_special_ids(tokenizer))
    encoded = {name: encode_examples(tokenizer, ds.examples, model_cfg.max_length) for name, ds in splits.items()}
    trainer = Trainer(model, train_cfg, tokenizer.mask_token_id, tokenizer.pad_token_id or 0, device)
    started = time.perf_counter()
    outcome = trainer.fit(encode_examples(tokenizer, train.examples, model_cfg.max_length), encoded["dev"])
    seconds = time.perf_counter() - started
    model.load_state_dict(outcome.best_weights)
    result = {name: trainer.evaluate(enc) for name, enc in encoded.items()}
    record = {"run": run.key, "dataset": run.dataset, "size": run.size, "arm": run.arm.name, "seed": run.seed,
              "settings": {**model_cfg.to_dict(), **train_cfg.to_dict(), "base_model": "all-MiniLM-L6-v2"},
              "best_iteration": outcome.state.best_iteration, "seconds": round(seconds, 1), "threads": threads,
              "device": device.type,
              "load_average_at_start": load_at_start,
              "history": [r.to_dict() for r in outcome.state.history], **{f"{k}_metrics": v for k, v in result.items()}}
    model.to("cpu")  # the explanation measurements run on CPU
    if ARGS.sentences:
        from bench.explain import measure

        started = time.perf_counter()
        record["explain"] = measure(model, tokenizer, run, ARGS.sentences)
        record["explain_seconds"] = round(time.perf_counter() - started, 1)
    return record


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def table(results: list[dict[str, Any]]) -> list[str]:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["size"], r["arm"]), []).append(r)
    lines = ["| dataset | train rows | arm | seeds | dev acc | test acc | test macro-F1 | misleading acc | "
             "best iter | s/run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, size, arm), rs in sorted(groups.items()):
        mis = [r["misleading_metrics"]["accuracy"] for r in rs if "misleading_metrics" in r]
        lines.append(
            f"| {dataset} | {size} | {arm} | {len(rs)} | {mean_sd([r['dev_metrics']['accuracy'] for r in rs])} | "
            f"{mean_sd([r['test_metrics']['accuracy'] for r in rs])} | "
            f"{mean_sd([r['test_metrics']['macro_f1'] for r in rs])} | {mean_sd(mis)} | "
            f"{', '.join(str(r['best_iteration']) for r in rs)} | "
            f"{statistics.mean(r['seconds'] for r in rs):.0f} |")
    return lines


def recipe_lines() -> list[str]:
    return [f"- recipe: all-MiniLM-L6-v2, first N training rows, full dev/test splits, {BASE}; arms: `baseline` "
            f"(plain fine-tuning), `ssa` (the product default: graded labels, logit attention), `hybrid` (the released "
            f"recipe, {RELEASED}), others as named; accuracy in %, mean ± sd over seeds; the best iteration (0-based; "
            "0 = before any probing) is chosen on dev."]


def missing_line(grid: list[Run]) -> str:
    """The grid's runs without a record, by key (the report says what it lacks instead of hiding it)."""
    keys = [run.key for run in grid if not (ARGS.cache / f"{run.key}.json").exists()]
    return f"- runs missing: {', '.join(keys)}" if keys else "- runs missing: none"


def write_report(path: Path, grid: str, results: list[dict[str, Any]], planned: int, command: str,
                 load: str, missing: str) -> None:
    header = [
        f"# Quality benchmark ({grid} grid)", "",
        f"- machine: {platform.node() or 'unknown'}, {platform.processor() or platform.machine()}, "
        f"torch threads per run: {', '.join(str(t) for t in sorted({r.get('threads', ARGS.threads) for r in results}))}"
        "; devices: " + ", ".join(sorted({r.get("device", "cpu") for r in results})) + "; runs share the machine "
        "with other work (see each record's load_average_at_start), so s/run is not a speed measurement",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average at the start: {load}",
        f"- command: `{command}`",
        f"- runs finished: {len(results)} of {planned}",
        missing,
        *recipe_lines(), "",
    ]
    path.write_text("\n".join(header + table(results)) + "\n")


def finished(grid: list[Run]) -> list[dict[str, Any]]:
    """Cached results of the grid's runs (any invocation's), so a report always covers all that is done."""
    files = [ARGS.cache / f"{run.key}.json" for run in grid]
    return [json.loads(f.read_text()) for f in files if f.exists()]


def main(default_grid: str = "required") -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=["required", "study", "explain"], default=default_grid)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "run-records")
    parser.add_argument("--only", help="run only the grid's runs whose key contains this (the report covers all)")
    parser.add_argument("--seeds", type=int, default=2, help="study grid: seeds per arm")
    parser.add_argument("--report", action="store_true", help="train nothing; write the report from the records")
    parser.add_argument("--cpu-2000", action="store_true", help="train the 2000-row runs without CUDA too")
    parser.add_argument("--sentences", type=int, default=200,
                        help="held-out sentences for the explanation measurements (0: skip them)")
    global ARGS
    ARGS = parser.parse_args()
    grids = {"required": required_grid, "study": study_grid, "explain": explain_grid}
    grid = grids[ARGS.grid]()
    runs = [r for r in grid if ARGS.only in r.key] if ARGS.only else grid
    if ARGS.report:
        runs = []
    elif not ARGS.cpu_2000 and not cuda_available():
        runs = [r for r in runs if r.size < 2000]
    ARGS.cache.mkdir(parents=True, exist_ok=True)
    script = "explain.py" if ARGS.grid == "explain" else f"quality.py --grid {ARGS.grid}"
    command = f"python bench/{script}"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def report() -> None:
        done = finished(grid)
        if ARGS.grid == "explain":  # the grid's runs and every study arm's (each arm is its own row)
            from bench.explain import write_report as write_explanations

            every = [json.loads(f.read_text()) for f in sorted(ARGS.cache.glob("*.json"))]
            write_explanations(ROOT / "bench" / "results" / "explanations.md", every, len(grid), command, load,
                               ARGS.threads, ARGS.sentences)
        else:
            out = ROOT / "bench" / "results" / ("quality.md" if ARGS.grid == "required" else "quality-study.md")
            write_report(out, ARGS.grid, done, len(grid), command, load, missing_line(grid))

    for number, run in enumerate(runs, 1):
        cached = ARGS.cache / f"{run.key}.json"
        if not cached.exists():
            print(f"[{number}/{len(runs)}] {run.key} ...", flush=True)
            record = execute(run, ARGS.threads)
            cached.write_text(json.dumps(record, indent=1))
            print(f"    dev {record['dev_metrics']['accuracy']:.4f} test {record['test_metrics']['accuracy']:.4f}"
                  f" ({record['seconds']:.0f} s)", flush=True)
            report()
    report()
    print("report written")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


ARGS: argparse.Namespace

if __name__ == "__main__":
    main()
