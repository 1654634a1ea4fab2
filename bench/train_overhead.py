"""Training overhead: one hybrid iteration (probing reported apart) vs one baseline epoch on the same data, the
same for the robust recipe (distractor copies, docs/ROBUSTNESS.md), and the peak memory of a 2000-example hybrid
and robust training run with the default encoder.

    python bench/train_overhead.py [--rows 1000] [--memory-rows 2000]   -> bench/results/training.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "movie-sentiment"


def make_trainer(method: str, rows: int, iterations: int, recipe: str = "graded"):  # type: ignore[no-untyped-def]
    import torch

    from ssa_core.config import ModelConfig, TrainConfig, default_base_model
    from ssa_core.data.datasets import head, load_dataset
    from ssa_core.model.ssa_model import build_model
    from ssa_core.model.tokenize import encode_examples, load_tokenizer, structural_special_ids
    from ssa_core.recipes import resolve
    from ssa_core.train.pipeline import distractor_copies, seed_everything
    from ssa_core.train.trainer import Trainer

    seed_everything(0)
    train = head(load_dataset(DATA / "train.jsonl"), rows)
    tokenizer = load_tokenizer(default_base_model())
    model_values, train_values = resolve(recipe, {"method": method}, {"iterations": iterations,
                                                                      "learning_rate": 5e-5})
    cfg = ModelConfig(base_model=default_base_model(), labels=train.labels, **model_values)
    train_cfg = TrainConfig(**train_values)
    model = build_model(cfg, structural_special_ids(tokenizer))
    trainer = Trainer(
        model,
        train_cfg,
        tokenizer.mask_token_id,
        tokenizer.pad_token_id,
        torch.device("cpu"),
        copy_maker=distractor_copies(tokenizer, cfg, train_cfg, None),
    )
    return trainer, encode_examples(tokenizer, train.examples, 128)


class StageClock:
    """Times the stages of Trainer.fit through its progress callback."""

    def __init__(self) -> None:
        self.spans: dict[tuple[int, str], float] = {}
        self.current: tuple[int, str] | None = None
        self.started = 0.0

    def on_progress(self, p) -> None:  # type: ignore[no-untyped-def]
        key = (p.iteration, p.stage)
        if key != self.current:
            now = time.perf_counter()
            if self.current is not None:
                self.spans[self.current] = self.spans.get(self.current, 0.0) + now - self.started
            self.current, self.started = key, now

    def should_stop(self) -> bool:
        return False


def timed_fit(method: str, rows: int, recipe: str = "graded") -> dict[tuple[int, str], float]:
    trainer, encoded = make_trainer(method, rows, iterations=2, recipe=recipe)
    clock = StageClock()
    trainer.callback = clock
    trainer.fit(encoded, encoded[:32])
    clock.on_progress(type("P", (), {"iteration": -1, "stage": "end"})())
    return clock.spans


class StopAfter:
    """Cancels a run after `steps` optimizer steps of iteration 1 (after its probing pass)."""

    def __init__(self, steps: int) -> None:
        self.steps, self.seen = steps, 0

    def on_progress(self, p) -> None:  # type: ignore[no-untyped-def]
        if p.iteration == 1 and p.stage == "training":
            self.seen += 1

    def should_stop(self) -> bool:
        return self.seen > self.steps


def memory_run(rows: int, recipe: str = "graded") -> None:
    """Iteration 0 over `rows` examples, the probing pass over all of them, then 10 steps of iteration 1."""
    from ssa_core.train.trainer import TrainingCancelled

    trainer, encoded = make_trainer("hybrid", rows, 2, recipe)
    trainer.callback = StopAfter(10)
    with contextlib.suppress(TrainingCancelled):
        trainer.fit(encoded, encoded[:200])


def peak_memory(rows: int, recipe: str = "graded") -> float:
    """Peak RSS (GB) of a child process running `memory_run(rows, recipe)` (one child per call: ru_maxrss of
    RUSAGE_CHILDREN is the largest child's, so the robust run is measured after the graded one)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.train_overhead as b; "
            f"b.memory_run({rows}, {recipe!r})")
    subprocess.run([sys.executable, "-c", code], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--memory-rows", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "training.md")
    args = parser.parse_args()
    import torch

    from ssa_core.config import MODEL_DEFAULTS, TRAIN_DEFAULTS

    load_before = os.getloadavg()[0]
    base = timed_fit("baseline", args.rows)
    hybrid = timed_fit("hybrid", args.rows)
    robust = timed_fit("hybrid", args.rows, "robust")
    base_epoch, hybrid_iter = base[(1, "training")], hybrid[(1, "training")]
    probing = hybrid.get((1, "probing"), 0.0)
    robust_iter, robust_probing = robust[(1, "training")], robust.get((1, "probing"), 0.0)
    robust_total = (robust_iter + robust_probing) / base_epoch
    memory = peak_memory(args.memory_rows)
    robust_memory = peak_memory(args.memory_rows, "robust")
    load_after = os.getloadavg()[0]
    ratio = hybrid_iter / base_epoch
    recipe = (
        f"label_mode {TRAIN_DEFAULTS['label_mode']}, attention_scores {MODEL_DEFAULTS['attention_scores']}, "
        f"lambda_tok {MODEL_DEFAULTS['lambda_tok']}, pool_transform {MODEL_DEFAULTS['pool_transform']}"
    )
    lines = [
        "# Training overhead",
        "",
        f"- machine: {platform.node()}, {platform.machine()}, CPU, torch threads {torch.get_num_threads()}",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `python bench/train_overhead.py {' '.join(sys.argv[1:])}`",
        f"- load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}",
        f"- workload: first {args.rows} movie-sentiment training rows, all-MiniLM-L6-v2, batch 32, max length 128;"
        " the second iteration of each run is timed; the hybrid runs the product default "
        f"({recipe})",
        "",
        "| arm | seconds | ratio to baseline epoch |",
        "|---|---|---|",
        f"| baseline epoch | {base_epoch:.1f} | 1.00× |",
        f"| hybrid iteration, training only | {hybrid_iter:.1f} | **{ratio:.3f}×** (target ≤ 1.3×: "
        f"{'met' if ratio <= 1.3 else 'missed'}) |",
        f"| hybrid iteration, probing (reported apart) | {probing:.1f} | {probing / base_epoch:.3f}× |",
        f"| hybrid iteration, training + probing | {hybrid_iter + probing:.1f} | "
        f"{(hybrid_iter + probing) / base_epoch:.3f}× |",
        f"| robust recipe iteration, training (originals + distractor copies) | {robust_iter:.1f} | "
        f"{robust_iter / base_epoch:.3f}× |",
        f"| robust recipe iteration, probing | {robust_probing:.1f} | {robust_probing / base_epoch:.3f}× |",
        f"| robust recipe iteration, training + probing | {robust_iter + robust_probing:.1f} | "
        f"**{robust_total:.3f}×** (target ≤ 3×: {'met' if robust_total <= 3 else 'missed'}) |",
        "",
        f"Peak resident memory of a {args.memory_rows}-example training run (iteration 0, the probing pass, "
        "then the start of iteration 1, where memory peaks): "
        f"hybrid **{memory:.2f} GB**, robust recipe **{robust_memory:.2f} GB** (target ≤ 3 GB: "
        f"{'met' if max(memory, robust_memory) <= 3 else 'missed'}).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
