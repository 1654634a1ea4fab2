"""The model card: a markdown summary of data, configuration, per-iteration metrics and weak-label statistics."""

from __future__ import annotations

from typing import Any

from ssa_core.config import TrainConfig


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def iteration_table(history: list[dict[str, Any]], metric: str) -> list[str]:
    lines = [
        f"| iteration | share | dev {metric} | train loss | token loss | kept rate | zero-label share | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for record in history:
        probe = record.get("probe", {})
        cells = [record["iteration"], record.get("share", 0.0), record["dev"][metric], record["train_loss"],
                 record["tok_loss"], probe.get("kept_rate", "-"), probe.get("zero_label_share", "-"),
                 record.get("seconds", "-")]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


def explanation_lines(scores: dict[str, Any] | None) -> list[str]:
    """The explanation-quality section: selectivity and faithfulness @20 % of the served attention (dev set)."""
    if not scores:
        return ["## Explanation quality", "", "Not measured (this variant's prediction is not pooled by the SSA "
                "attention, or the task is regression).", ""]
    floor = scores["random_comprehensiveness_20"]
    ratio = f" ({scores['comprehensiveness_20'] / floor:.1f}× random's {floor:.3f})" if floor > 0 else ""
    return [
        "## Explanation quality", "",
        f"Measured on {scores['sentences']} dev sentences, on the attention this model serves:",
        f"- normalised entropy {scores['entropy']:.3f} (1.0 = uniform); share on the top 20 % of wordpieces "
        f"{scores['top20_share']:.3f} (0.20 = uniform)",
        f"- comprehensiveness@20 % {scores['comprehensiveness_20']:.3f}{ratio}: how much the predicted class's "
        "probability drops when the 20 % most-attended wordpieces are deleted",
        f"- sufficiency@20 % {scores['sufficiency_20']:.3f}: the drop when only those are kept (lower is better)", "",
    ]


def model_card(meta: dict[str, Any], metrics: dict[str, Any], train_cfg: TrainConfig | None,
               data: dict[str, Any]) -> str:
    metric = metrics["metric"]
    lines = [
        f"# Model card: {meta['model_id']}",
        "",
        f"SSA variant **{meta['method']}** on `{meta['base_model']}` ({meta['task']}; labels: "
        f"{', '.join(meta['labels']) or 'regression'}). Version `{meta['version']}`, created {meta['created_at']}.",
        "",
        f"Best iteration: {metrics['best_iteration']}, dev {metric} **{metrics['dev'][metric]:.4f}**.",
        "",
        "## Data",
    ]
    for split, info in data.items():
        counts = info.get("class_counts")
        detail = f"; classes: {counts}" if counts else ""
        lines.append(f"- {split}: {info['examples']} examples from `{info['source']}`{detail}")
    lines += ["", "## Configuration", "",
              f"λ {meta['lambda_tok']}, τ {meta['tau']}, w {meta['cls_weight']}, max length {meta['max_length']}."]
    if train_cfg is not None:
        lines.append(", ".join(f"{k} {v}" for k, v in train_cfg.to_dict().items()))
    lines += ["", *explanation_lines(metrics.get("explanations"))]
    lines += ["## Iterations", "", *iteration_table(metrics["iterations"], metric), ""]
    lines += ["Kept rate: share of masked copies whose prediction held (keep mode) or flipped (flip mode).",
              "Zero-label share: share of labelled wordpieces marked 0 (not needed by the decision).", ""]
    return "\n".join(lines)
