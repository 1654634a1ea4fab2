"""Does the model that a fresh deployment trains on its first start meet issue 9's required line on its own dev set?

    python bench/first_start.py [--threads N]

Trains, in-process and through the same code path as the worker (`ssa_core.train.pipeline.train_model`):
- the first-start job exactly as `scripts/up.sh` / compose submit it (`service.submissions.bootstrap.bootstrap_config`
  with the default settings) on the shipped sample (`ssa_core/samples/sentiment`, 600 train / 200 dev rows);
- a baseline (plain fine-tuning) with the same job settings but `method: baseline`, on the same data and seed.
Then reads each model folder's metrics.json: the required line is comprehensiveness@20 % of the served attention
≥ 2× a random ranking's (measured at the end of training on the dev set, `explanations` in metrics.json) and dev
accuracy ≥ the baseline's − 0.5 points. Writes bench/results/first-start.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "results" / "first-start.md"
MIN_COMP_RATIO = 2.0
MAX_ACCURACY_LOSS = 0.005


def train(method: str | None, out: Path) -> tuple[dict[str, Any], float]:
    """Train the first-start job (or its baseline twin) into `out`; its metrics.json and the training seconds."""
    from jobs.spec import TrainJobSpec, build_configs
    from service.settings import Settings
    from service.submissions.bootstrap import SAMPLE_DIR, bootstrap_config
    from ssa_core.config import default_base_model
    from ssa_core.data.datasets import load_dataset
    from ssa_core.train.pipeline import train_model

    spec = bootstrap_config(Settings())
    if method is not None:
        spec = TrainJobSpec(**{**spec.model_dump(), "method": method})
    train_ds, dev_ds = (load_dataset(SAMPLE_DIR / f"{name}.jsonl") for name in ("train", "dev"))
    model_cfg, train_cfg = build_configs(
        spec, base_model=str(default_base_model()), labels=train_ds.labels, task=train_ds.task
    )
    started = time.perf_counter()
    train_model(train_ds, dev_ds, model_cfg, train_cfg, out, device="cpu")
    seconds = time.perf_counter() - started
    return json.loads((out / "metrics.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        default, default_s = train(None, Path(tmp) / "default")
        baseline, baseline_s = train("baseline", Path(tmp) / "baseline")
    load_after = os.getloadavg()

    default_acc, baseline_acc = default["dev"]["accuracy"], baseline["dev"]["accuracy"]
    scores = default.get("explanations") or {}
    comp, random_comp = scores.get("comprehensiveness_20"), scores.get("random_comprehensiveness_20")
    ratio = comp / random_comp if comp is not None and random_comp else None
    accuracy_met = default_acc >= baseline_acc - MAX_ACCURACY_LOSS
    comp_met = ratio is not None and ratio >= MIN_COMP_RATIO
    verdict = "meets" if accuracy_met and comp_met else "does not meet"
    lines = [
        "# First-start model against the required line (issue 9)",
        "",
        f"- machine: {platform.node() or 'vm'}, {platform.machine()}, CPU, torch threads {args.threads}",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- command: `python bench/first_start.py --threads {args.threads}`",
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}",
        "- data: the shipped sample `ssa_core/samples/sentiment` (600 train / 200 dev rows); the first-start job as "
        "`scripts/up.sh` submits it, and its baseline twin (`method: baseline`, every other setting equal)",
        "",
        "| model | method | dev accuracy | comp@20 served attention | comp@20 random | ratio | entropy "
        "| top-20 % share | training s (not a speed measurement) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| first start | hybrid (product default) | {100 * default_acc:.1f} | {fmt(comp)} | {fmt(random_comp)} | "
        f"{'-' if ratio is None else f'{ratio:.2f}×'} | {fmt(scores.get('entropy'))} "
        f"| {fmt(scores.get('top20_share'))} | {default_s:.0f} |",
        f"| baseline twin | baseline | {100 * baseline_acc:.1f} | - | - | - | - | - | {baseline_s:.0f} |",
        "",
        f"Required line: comprehensiveness@20 % ≥ {MIN_COMP_RATIO:.0f}× random's "
        f"({'met' if comp_met else 'missed'}: {'-' if ratio is None else f'{ratio:.2f}×'}) and dev accuracy ≥ the "
        f"baseline's − {100 * MAX_ACCURACY_LOSS:.1f} ({'met' if accuracy_met else 'missed'}: "
        f"{100 * (default_acc - baseline_acc):+.1f} points). The first-start model {verdict} the required line "
        "on its own dev set (one seed, the job's default).",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
