"""Explanation benchmark: how selective and how faithful each arm's token weights are, against reference rankings.

    python bench/explain.py                 # train what the grid still lacks, write bench/results/explanations.md
    python bench/explain.py --only trec6    # part of the grid (the report still covers every finished run)

It shares its runs with `bench/quality.py --grid required` (one training per dataset × arm × seed; each finished run
is cached as JSON in bench/results/run-records/, with its explanation measurements, so both scripts resume).
Measured on the first --sentences held-out test sentences of each dataset, per trained model:
- selectivity of the served SSA attention (and of the baseline's last-layer [CLS] attention): normalised entropy
  (1.0 = uniform) and the share on the top 20 % of wordpieces (0.20 = uniform);
- ERASER comprehensiveness / sufficiency at 10/20/50 % and AOPC (ssa_core.train.explanations) of: the served attention,
  a random ranking, leave-one-word-out occlusion of the same model, and for the baseline its [CLS] attention and
  Integrated Gradients (Captum; an optional benchmark dependency, the baseline only);
- misleading clause (movie-sentiment): attention on the inserted clause divided by the clause's share of wordpieces,
  for inputs the model gets right and wrong (1.0 = no discrimination).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import quality  # noqa: E402
from bench.misleading import build_with_spans  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
IG_STEPS = 32
GRID_ARMS = ("baseline", "ssa", "hybrid")
IG_SENTENCES = 200


def measure(model: Any, tokenizer: Any, run: quality.Run, sentences: int) -> dict[str, Any]:
    """Every explanation number of one trained model (see the module docstring)."""
    import torch

    from ssa_core.data.datasets import load_dataset
    from ssa_core.model.tokenize import encode_examples
    from ssa_core.train.explanations import (
        faithfulness,
        occlusion_weights,
        random_rankings,
        ranking,
        selectivity,
        served_attention,
    )

    device, pad = torch.device("cpu"), tokenizer.pad_token_id or 0
    test = load_dataset(DATA / run.dataset / "test.jsonl").examples[:sentences]
    examples = encode_examples(tokenizer, test, model.config.max_length)

    def faith(weights: Sequence[np.ndarray]) -> dict[str, Any]:
        return asdict(faithfulness(model, examples, [ranking(w) for w in weights], pad, device))

    record: dict[str, Any] = {"sentences": len(examples)}
    record["random"] = asdict(faithfulness(model, examples, random_rankings(examples, run.seed), pad, device))
    record["occlusion"] = faith(occlusion_weights(model, examples, pad, device))
    weight_sources: dict[str, Callable[[Sequence[Any]], list[np.ndarray]]] = {}
    if model.config.pools_by_attention:
        weight_sources["attention"] = lambda exs: served_attention(model, exs, pad, device)
    if model.config.method == "baseline":
        weight_sources["cls_attention"] = lambda exs: cls_attention(model, exs, pad)
        ig = integrated_gradients(model, examples[:IG_SENTENCES], pad)
        if ig is not None:
            record["integrated_gradients"] = asdict(
                faithfulness(model, examples[:IG_SENTENCES], [ranking(w) for w in ig], pad, device))
    for name, source in weight_sources.items():
        weights = source(examples)
        record[name] = {**faith(weights), **asdict(selectivity(weights))}
    if run.dataset == "movie-sentiment" and weight_sources:
        record["misleading"] = clause_ratios(model, tokenizer, weight_sources)
    return record


def clause_ratios(
    model: Any, tokenizer: Any, sources: dict[str, Callable[[Sequence[Any]], list[np.ndarray]]]
) -> dict[str, dict[str, float]]:
    """Per weight source: the weight on the inserted clause / the clause's share of wordpieces, averaged over the
    misleading test inputs the model gets right and over those it gets wrong (with their counts)."""
    import torch

    from ssa_core.data.datasets import Example
    from ssa_core.model.tokenize import encode_examples
    from ssa_core.train.explanations import probabilities
    from ssa_core.train.probing import originals_of

    rows = build_with_spans(DATA / "movie-sentiment" / "test.jsonl")
    examples = [Example(i, i + 1, r.text, None, r.label) for i, r in enumerate(rows)]
    encoded = encode_examples(tokenizer, examples, model.config.max_length)
    pad = tokenizer.pad_token_id or 0
    probs = probabilities(model, originals_of(encoded), pad, torch.device("cpu"), 16384)
    right = probs.argmax(axis=-1) == np.asarray([model.config.labels.index(r.label) for r in rows])
    result: dict[str, dict[str, float]] = {}
    for name, source in sources.items():
        ratios: dict[bool, list[float]] = {True: [], False: []}
        for e, row, weights, ok in zip(encoded, rows, source(encoded), right, strict=True):
            inside = np.asarray([row.clause[0] <= p.start and p.end <= row.clause[1] for p in e.positions])
            if weights.sum() <= 0 or not inside.any() or inside.all():
                continue
            ratios[bool(ok)].append(float(weights[inside].sum() / weights.sum() / inside.mean()))
        result[name] = {"right": float(np.mean(ratios[True])) if ratios[True] else float("nan"),
                        "wrong": float(np.mean(ratios[False])) if ratios[False] else float("nan"),
                        "n_right": len(ratios[True]), "n_wrong": len(ratios[False])}
    return result


def cls_attention(model: Any, examples: Sequence[Any], pad: int) -> list[np.ndarray]:
    """The last layer's attention from [CLS] to each real wordpiece, averaged over heads (what attention viewers
    show)."""
    import torch

    from ssa_core.model.tokenize import pad_batch
    from ssa_core.train.probing import length_batches

    encoder = model.encoder
    if hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("eager")
    out: list[np.ndarray] = [np.zeros(0)] * len(examples)
    with torch.inference_mode():
        for batch_index in length_batches([len(e) for e in examples], 16384):
            chosen = [examples[i] for i in batch_index]
            batch = pad_batch([e.input_ids for e in chosen], None, pad)
            result = encoder(**batch, output_attentions=True)
            last = result.attentions[-1].mean(dim=1)[:, 0, :].numpy()  # [b, T] from [CLS]
            for row, i in zip(last, batch_index, strict=True):
                out[i] = row[[p.index for p in examples[i].positions]]
    return out


def integrated_gradients(model: Any, examples: Sequence[Any], pad: int) -> list[np.ndarray] | None:
    """Integrated Gradients (Captum) of the predicted class w.r.t. the word embeddings, [PAD] baseline, summed over
    the hidden size; None when Captum is not installed."""
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        return None
    import torch

    embeddings = model.encoder.get_input_embeddings()
    model.eval()

    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return model(input_ids=input_ids, attention_mask=attention_mask).logits.softmax(dim=-1)

    lig = LayerIntegratedGradients(forward, embeddings)
    out = []
    for e in examples:
        ids = torch.tensor([e.input_ids])
        mask = torch.ones_like(ids)
        with torch.no_grad():
            target = int(forward(ids, mask).argmax(dim=-1))
        reference = ids.clone()
        positions = [p.index for p in e.positions]
        reference[0, positions] = pad
        attributions = lig.attribute(ids, reference, additional_forward_args=(mask,), target=target,
                                     n_steps=IG_STEPS)  # [1, T, H]
        out.append(attributions.sum(dim=-1)[0, positions].detach().numpy())
    return out


# ---- the report ------------------------------------------------------------------------------------------------
def mean_sd(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * sd:.{digits}f}"


def pick(records: list[dict[str, Any]], *path: str) -> list[float]:
    out = []
    for r in records:
        value: Any = r.get("explain", {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            out.append(float(value))
    return out


SOURCES = (("attention", "served SSA attention"), ("cls_attention", "[CLS] attention (last layer)"),
           ("occlusion", "leave-one-word-out occlusion"), ("integrated_gradients", "Integrated Gradients"),
           ("random", "random"))


def tables(results: list[dict[str, Any]]) -> list[str]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        if "explain" in r:
            groups.setdefault((r["dataset"], r["arm"]), []).append(r)
    lines = ["## Faithfulness and selectivity", "",
             "Mean ± sd over seeds. comp / suff = comprehensiveness / sufficiency (drop of the predicted class's "
             "probability when the top wordpieces are deleted / when only they are kept; higher comp and lower suff "
             "are better). entropy: normalised, 1.0 = uniform; top-20 %: 0.20 = uniform.", "",
             "| dataset | arm | seeds | ranking | comp@10 | comp@20 | comp@50 | suff@10 | suff@20 | suff@50 | AOPC | "
             "entropy | top-20 % share |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, arm), rs in sorted(groups.items()):
        for key, label in SOURCES:
            if not pick(rs, key, "aopc"):
                continue
            cells = [mean_sd(pick(rs, key, "comprehensiveness", f)) for f in ("0.1", "0.2", "0.5")]
            cells += [mean_sd(pick(rs, key, "sufficiency", f)) for f in ("0.1", "0.2", "0.5")]
            cells += [mean_sd(pick(rs, key, "aopc")), mean_sd(pick(rs, key, "entropy")),
                      mean_sd(pick(rs, key, "top20_share"))]
            lines.append(f"| {dataset} | {arm} | {len(rs)} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Misleading clause (movie-sentiment)", "",
              "ratio = weight on the inserted clause / the clause's share of wordpieces (1.0 = no discrimination; "
              "lower = the model looks away from it), split by whether the model got the input right.", "",
              "| arm | seeds | weights | misleading acc | ratio, right | ratio, wrong | inputs right / wrong |",
              "|---|---|---|---|---|---|---|"]
    for (dataset, arm), rs in sorted(groups.items()):
        if dataset != "movie-sentiment":
            continue
        for key in ("attention", "cls_attention"):
            if not pick(rs, "misleading", key, "n_right"):
                continue
            acc = [r["misleading_metrics"]["accuracy"] for r in rs]
            counts = f"{statistics.mean(pick(rs, 'misleading', key, 'n_right')):.0f} / " \
                     f"{statistics.mean(pick(rs, 'misleading', key, 'n_wrong')):.0f}"
            lines.append(f"| {arm} | {len(rs)} | {key} | {mean_sd(acc, 100, 1)} | "
                         f"{mean_sd(pick(rs, 'misleading', key, 'right'), 1, 2)} | "
                         f"{mean_sd(pick(rs, 'misleading', key, 'wrong'), 1, 2)} | {counts} |")
    return lines


def mean_of(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.mean(values) if values else float("nan")


def targets(results: list[dict[str, Any]], product: str = "ssa", baseline: str = "baseline") -> list[str]:
    """The issue's targets for the product default, each computed from the finished runs (met / missed), with the
    number of seeds behind it: fewer than 3 seeds on either side is reported, not judged."""
    lines = ["## Targets (product default vs the baseline, computed from the finished runs)", "",
             "| dataset | target | value | threshold | seeds (default / baseline) | verdict |",
             "|---|---|---|---|---|---|"]
    for dataset in quality.DATASETS:
        mine = [r for r in results if r["dataset"] == dataset and r["arm"] == product and "explain" in r]
        base = [r for r in results if r["dataset"] == dataset and r["arm"] == baseline and "explain" in r]
        if not mine or not base:
            lines.append(f"| {dataset} | all | - | - | {len(mine)} / {len(base)} | not measured yet |")
            continue
        seeds = f"{len(mine)} / {len(base)}"
        judged = len(mine) >= 3 and len(base) >= 3

        def row(name: str, value: float, threshold: float, higher: bool, text: str, required: bool,
                seeds: str = seeds, judged: bool = judged, dataset: str = dataset) -> str:
            ok = value >= threshold if higher else value <= threshold
            verdict = ("met" if ok else "missed") if judged else f"{'on track' if ok else 'behind'} (too few seeds)"
            kind = "required" if required else "target"
            return f"| {dataset} | {kind}: {name} | {text.format(value)} | {text.format(threshold)} | {seeds} | " \
                   f"{verdict} |"

        comp = mean_of(pick(mine, "attention", "comprehensiveness", "0.2"))
        rand = mean_of(pick(mine, "random", "comprehensiveness", "0.2"))
        occl = mean_of(pick(mine, "occlusion", "comprehensiveness", "0.2"))
        acc = mean_of([100 * r["test_metrics"]["accuracy"] for r in mine])
        base_acc = mean_of([100 * r["test_metrics"]["accuracy"] for r in base])
        lines.append(row("comprehensiveness@20 % ÷ random's", comp / rand, 2.0, True, "{:.2f}×", True))
        lines.append(row("test accuracy − baseline's", acc - base_acc, -0.5, True, "{:+.1f}", True))
        lines.append(row("normalised entropy", mean_of(pick(mine, "attention", "entropy")), 0.75, False, "{:.3f}",
                         False))
        lines.append(row("top-20 % share", mean_of(pick(mine, "attention", "top20_share")), 0.40, True, "{:.3f}",
                         False))
        lines.append(row("comprehensiveness@20 % ÷ occlusion's", comp / occl, 0.8, True, "{:.2f}×", False))
        lines.append(row("test accuracy − baseline's", acc - base_acc, 1.0, True, "{:+.1f}", False))
        if dataset == "movie-sentiment":
            mis = mean_of([100 * r["misleading_metrics"]["accuracy"] for r in mine])
            base_mis = mean_of([100 * r["misleading_metrics"]["accuracy"] for r in base])
            lines.append(row("misleading accuracy − baseline's", mis - base_mis, 10.0, True, "{:+.1f}", False))
            lines.append(row("clause-attention ratio, inputs right",
                             mean_of(pick(mine, "misleading", "attention", "right")), 0.5, False, "{:.2f}", False))
    return lines


def study_table(results: list[dict[str, Any]], product: str = "ssa", seed: int = 1) -> list[str]:
    """Every arm beside the product default on the same seed: what each change did (dev decides; test reported)."""
    lines = [f"## What each arm did (seed {seed}, beside the product default `{product}` on the same seed)", "",
             "Δ = arm − default, in accuracy points; entropy lower = more selective; the ratios are "
             "comprehensiveness@20 % of the served attention over random's and over occlusion's (same model).", "",
             "| dataset | arm | dev acc (Δ) | test acc (Δ) | misleading acc (Δ) | entropy | top-20 % share | "
             "comp@20 ÷ random | comp@20 ÷ occlusion |", "|---|---|---|---|---|---|---|---|---|"]
    chosen = [r for r in results if r["seed"] == seed and "explain" in r and r["arm"] != "baseline"]
    for dataset in quality.DATASETS:
        mine = {r["arm"]: r for r in chosen if r["dataset"] == dataset}
        default = mine.get(product)
        if default is None:
            continue
        for arm in [product, *sorted(a for a in mine if a != product)]:
            r = mine[arm]

            def points(split: str, r: dict[str, Any] = r, default: dict[str, Any] = default) -> str:
                key = f"{split}_metrics"
                if key not in r:
                    return "-"
                value = 100 * r[key]["accuracy"]
                delta = "" if r is default else f" ({value - 100 * default[key]['accuracy']:+.1f})"
                return f"{value:.1f}{delta}"

            comp = mean_of(pick([r], "attention", "comprehensiveness", "0.2"))
            rand = mean_of(pick([r], "random", "comprehensiveness", "0.2"))
            occl = mean_of(pick([r], "occlusion", "comprehensiveness", "0.2"))
            lines.append(f"| {dataset} | {arm} | {points('dev')} | {points('test')} | {points('misleading')} | "
                         f"{mean_of(pick([r], 'attention', 'entropy')):.3f} | "
                         f"{mean_of(pick([r], 'attention', 'top20_share')):.3f} | {comp / rand:.2f}× | "
                         f"{comp / occl:.2f}× |")
    return lines


def accuracy_table(results: list[dict[str, Any]]) -> list[str]:
    return ["## Clean accuracy beside it", "", *quality.table(results)]


def write_report(path: Path, results: list[dict[str, Any]], planned: int, command: str, load: str,
                 threads: int, sentences: int) -> None:
    header = [
        "# Explanation benchmark", "",
        f"- machine: {platform.node() or 'unknown'}, {platform.processor() or platform.machine()}, CPU only, "
        f"{os.cpu_count()} cores; torch threads per run: "
        f"{', '.join(str(t) for t in sorted({r.get('threads', threads) for r in results}))}; runs share the cores "
        "with other work (see each record's load_average_at_start), so s/run is not a speed measurement",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average at the start: {load}",
        f"- command: `{command}`",
        f"- runs finished: {sum(1 for r in results if 'explain' in r and r['arm'] in GRID_ARMS)} of the grid's "
        f"{planned} (baseline, ssa, hybrid × 2 datasets × 3 seeds); study arms (one seed each, chosen on dev) are "
        "listed beside them",
        f"- held-out sentences: the first {sentences} of each test split (Integrated Gradients: "
        f"the first {IG_SENTENCES}, {IG_STEPS} steps); misleading clause: all 1070 movie-sentiment test inputs",
        "", *quality.recipe_lines(), "",
    ]
    body = [*targets(results), "", *study_table(results), "", *tables(results), "", *accuracy_table(results)]
    path.write_text("\n".join(header + body) + "\n")


def main() -> None:
    quality.main(default_grid="explain")


if __name__ == "__main__":
    main()
