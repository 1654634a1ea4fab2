"""Probing speed: packed probing vs one forward pass per masked copy vs the bare forward passes it needs.

    python bench/probe_bench.py [--sentences 128] [--copies 8]   -> bench/results/probing.md

All three arms run the same model on the same masked sequences in one process; ratios are what counts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssa_core.config import ModelConfig, default_base_model  # noqa: E402
from ssa_core.data.datasets import head, load_dataset  # noqa: E402
from ssa_core.model.ssa_model import build_model  # noqa: E402
from ssa_core.model.tokenize import encode_examples, load_tokenizer, pad_batch, structural_special_ids  # noqa: E402
from ssa_core.train.probing import (  # noqa: E402
    Sequences,
    length_batches,
    packed_outputs,
    sample_example_mask,
    with_mask,
)

DATA = ROOT.parent / "shared" / "data" / "movie-sentiment" / "dev.jsonl"


def masked_copies(encoded, copies: int, mask_id: int, seed: int) -> Sequences:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    seqs = Sequences()
    for e in encoded:
        for _ in range(copies):
            seqs.add(with_mask(e.input_ids, sample_example_mask(e, rng, 0.1), mask_id), e.token_type_ids)
    return seqs


def timed(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--loop-sentences", type=int, default=32, help="the slow loop runs on a prefix, scaled up")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "probing.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    tokenizer = load_tokenizer(default_base_model())
    dataset = head(load_dataset(DATA), args.sentences)
    model = build_model(ModelConfig(base_model=default_base_model(), labels=dataset.labels),
                        structural_special_ids(tokenizer)).to(device).eval()
    encoded = encode_examples(tokenizer, dataset.examples, 128)
    pad = tokenizer.pad_token_id
    budget = 16384

    def packed() -> None:  # sample masks + pack + run: what Prober does
        seqs = masked_copies(encoded, args.copies, tokenizer.mask_token_id, 0)
        packed_outputs(model, seqs, pad, budget, device)

    fixed = masked_copies(encoded, args.copies, tokenizer.mask_token_id, 0)
    batches = [pad_batch([fixed.ids[i] for i in b], [fixed.types[i] for i in b] if fixed.types else None, pad)
               for b in length_batches([len(s) for s in fixed.ids], budget)]

    @torch.inference_mode()
    def bare() -> None:  # the same padded batches, forward passes only
        for batch in batches:
            model(**{k: v.to(device) for k, v in batch.items()})

    loop_n = min(args.loop_sentences, len(encoded)) * args.copies

    @torch.inference_mode()
    def loop() -> None:  # one forward pass per masked copy
        for i in range(loop_n):
            batch = pad_batch([fixed.ids[i]], [fixed.types[i]] if fixed.types else None, pad)
            model(**{k: v.to(device) for k, v in batch.items()})

    packed()  # warm-up
    t_packed, t_bare = timed(packed), timed(bare)
    t_loop = timed(loop, repeats=1) * (len(fixed.ids) / loop_n)
    n = len(fixed.ids)
    rows = [("one forward pass per masked copy", t_loop), ("packed probing (sample + pack + run)", t_packed),
            ("bare forward passes, same batches", t_bare)]
    lines = [
        "# Probing speed", "",
        f"- machine: {platform.node()}, {platform.machine()}, device {device}, torch threads {torch.get_num_threads()}",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `python bench/probe_bench.py {' '.join(sys.argv[1:])}`",
        f"- workload: {len(encoded)} movie-sentiment dev sentences × {args.copies} span-masked copies = {n} sequences"
        f" (all-MiniLM-L6-v2 hybrid model, eval mode; the per-copy loop timed on {loop_n} copies and scaled)", "",
        "| arm | seconds | sequences/s | packed speed-up over it |", "|---|---|---|---|",
    ]
    for name, seconds in rows:
        lines.append(f"| {name} | {seconds:.3f} | {n / seconds:.0f} | {seconds / t_packed:.2f}× |")
    lines += ["", f"Packed vs per-copy loop: **{t_loop / t_packed:.1f}×** faster (target ≥ 20×); "
              f"packed vs bare passes: **{t_packed / t_bare:.2f}×** the time (target ≤ 1.25×)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
