"""The model folder: weights and config.json (Hugging Face layout), tokenizer, model.onnx (parity-checked),
ssa.json, metrics.json and the model card; and a folder read back for re-export or probing."""


from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data.datasets import Dataset
from ssa_core.export.card import hub_card
from ssa_core.export.onnx import ExportSpec, check_parity, export_onnx
from ssa_core.model.ssa_model import SSAModel, load_model, save_weights
from ssa_core.model.tokenize import Encoded, batch_tensors, encode_examples, load_tokenizer, structural_special_ids
from ssa_core.records import TrainingMetrics
from ssa_core.runtime.modelmeta import (
    CARD_FILE,
    FORMAT_VERSION,
    LEGACY_CARD_FILE,
    METRICS_FILE,
    ONNX_FILE,
    SSA_FILE,
    file_digest,
)


def parity_batches(encoded: Sequence[Encoded], pad_id: int) -> list[dict[str, torch.Tensor]]:
    """Real inputs of several lengths and batch sizes: the shortest alone, 4 from the middle, the 8 longest."""
    ordered = sorted(encoded, key=len)
    if not ordered:
        return []
    middle = len(ordered) // 2
    groups = [ordered[:1], ordered[middle : middle + 4], ordered[-8:]]
    return [batch_tensors(group, pad_id) for group in groups]


def write_model_folder(
    model: SSAModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    train_cfg: TrainConfig | None,
    metrics: TrainingMetrics | None,
    parity_examples: Sequence[Encoded],
    model_id: str | None = None,
    data_info: dict[str, Any] | None = None,
    served_metrics: Callable[[Path, TrainingMetrics], TrainingMetrics] | None = None,
) -> tuple[dict[str, float], TrainingMetrics | None]:
    """Weights and config.json in the Hugging Face layout (with modeling_ssa.py), tokenizer, ONNX (parity-checked),
    ssa.json, metrics.json and the model card (README.md). `served_metrics(out_dir, metrics)`: the metrics with
    measurements of the exported model as served added (the robustness report), before metrics.json and the card
    are written. Returns the ONNX parity and the metrics written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, out_dir)
    tokenizer.save_pretrained(out_dir)
    parity = export_and_check(model, out_dir, parity_examples, tokenizer.pad_token_id or 0)
    cfg = model.config
    meta = ssa_metadata(cfg, out_dir, model_id, train_cfg, metrics, parity, pair=_has_pairs(parity_examples))
    meta["pad_token_id"] = tokenizer.pad_token_id or 0
    (out_dir / SSA_FILE).write_text(json.dumps(meta, indent=2))
    if metrics is not None and served_metrics is not None:
        metrics = served_metrics(out_dir, metrics)
    if metrics is not None:
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics.to_dict(), indent=2))
        hub_card(meta, metrics, train_cfg, data_info or {}).save(out_dir / CARD_FILE)
    return parity, metrics


def _has_pairs(encoded: Sequence[Encoded]) -> bool:
    return bool(encoded) and encoded[0].example.text_pair is not None


def export_and_check(model: SSAModel, out_dir: Path, examples: Sequence[Encoded], pad_id: int,
                     on_stage: Callable[[str], object] | None = None) -> dict[str, float]:
    stage = on_stage or (lambda name: None)
    with_types = bool(examples) and examples[0].token_type_ids is not None
    stage("exporting ONNX")
    spec = export_onnx(model, out_dir / ONNX_FILE, with_types, ExportSpec())
    stage("parity check against PyTorch")
    return check_parity(model, out_dir / ONNX_FILE, parity_batches(examples, pad_id), spec)


def ssa_metadata(
    cfg: ModelConfig,
    out_dir: Path,
    model_id: str | None,
    train_cfg: TrainConfig | None,
    metrics: TrainingMetrics | None,
    parity: dict[str, float],
    pair: bool,
) -> dict[str, Any]:
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    unhashed = (SSA_FILE, METRICS_FILE, CARD_FILE, LEGACY_CARD_FILE)
    digests = {name: file_digest(out_dir / name) for name in files if name not in unhashed}
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "model_id": model_id or out_dir.name,
        "version": digests[ONNX_FILE][:12],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **cfg.to_dict(),
        "pair": pair,
        "onnx": {"file": ONNX_FILE, "outputs": list(ExportSpec().outputs), "opset": ExportSpec().opset,
                 "parity_max_abs_diff": parity},
        "files": digests,
    }
    if train_cfg is not None:
        meta["training"] = train_cfg.to_dict()
    if metrics is not None:
        meta["metric"] = metrics.metric
        meta["dev_metric"] = metrics.dev_metric
    return meta


def load_trained(model_dir: Path) -> tuple[SSAModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """A saved model folder back as (model, tokenizer, ssa.json contents)."""
    meta = json.loads((model_dir / SSA_FILE).read_text())
    cfg = ModelConfig.from_dict({"attention_scores": "probability", **meta} if meta.get("format", 1) < 2 else meta)
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, cfg, structural_special_ids(tokenizer))
    return model.eval(), tokenizer, meta


def reexport(model_dir: Path, dataset: Dataset, on_stage: Callable[[str], object] | None = None) -> dict[str, float]:
    """Export model.onnx again from the folder's weights, parity-checked on `dataset`'s texts; `on_stage(name)` is
    called as each stage starts (loading, exporting, parity check). Variants made from the previous model.onnx
    (int8) are removed: quantize again."""
    stage = on_stage or (lambda name: None)
    stage("loading the weights")
    model, tokenizer, meta = load_trained(model_dir)
    encoded = encode_examples(tokenizer, dataset.examples[:256], int(meta["max_length"]))
    parity = export_and_check(model, model_dir, encoded, tokenizer.pad_token_id or 0, on_stage)
    meta["onnx"]["parity_max_abs_diff"] = parity
    # variants were checked against the previous model.onnx: they go with it
    for variant in meta.pop("variants", {}).values():
        (model_dir / variant["file"]).unlink(missing_ok=True)
        meta["files"].pop(variant["file"], None)
    meta["version"] = file_digest(model_dir / ONNX_FILE)[:12]
    meta["files"][ONNX_FILE] = file_digest(model_dir / ONNX_FILE)
    (model_dir / SSA_FILE).write_text(json.dumps(meta, indent=2))
    return parity


