"""End-to-end operations on datasets and model folders: train, export, label. Used by the CLI and the worker."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from ssa_core.card import hub_card
from ssa_core.checkpoint import TrainState
from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data import Dataset
from ssa_core.explanations import attention_scores
from ssa_core.export import ExportSpec, check_parity, export_onnx
from ssa_core.modeling import SSAModel, build_model, load_model, save_weights
from ssa_core.modelmeta import (
    CARD_FILE,
    FORMAT_VERSION,
    LEGACY_CARD_FILE,
    METRICS_FILE,
    ONNX_FILE,
    SSA_FILE,
    file_digest,
)
from ssa_core.probing import ProbeForward, WeakExample
from ssa_core.rationales import reviewed_count
from ssa_core.tokenize import Encoded, batch_tensors, encode_examples, load_tokenizer, structural_special_ids
from ssa_core.training import Progress, SilentCallback, Trainer, TrainingCallback
from ssa_core.weak_labels import label_file, weak_label_record, write_jsonl


@dataclass
class TrainResult:
    out_dir: Path
    metrics: dict[str, Any]
    parity: dict[str, float]


def pick_device(device: str | None = None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class WeakLabelWriter:
    """Writes each iteration's kept copies to <directory>/iter<k>.jsonl."""

    def __init__(self, directory: Path, tokenizer: PreTrainedTokenizerBase) -> None:
        self.directory = directory
        self.tokenizer = tokenizer

    def __call__(self, iteration: int, weak: Sequence[WeakExample], selected: set[int]) -> None:
        def records() -> Iterator[dict[str, Any]]:
            for i, w in enumerate(weak):
                tokens = self.tokenizer.convert_ids_to_tokens(w.encoded.input_ids)
                yield weak_label_record(w, iteration, i in selected, tokens)

        write_jsonl(label_file(self.directory, iteration), records())


def train_model(
    train: Dataset,
    dev: Dataset,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out_dir: Path,
    *,
    callback: TrainingCallback | None = None,
    checkpoint_dir: Path | None = None,
    labels_dir: Path | None = None,
    device: str | None = None,
    model_id: str | None = None,
    probe_forward: ProbeForward | None = None,
) -> TrainResult:
    """Train an SSA model and write the complete model folder (weights, tokenizer, ONNX, metrics, card)."""
    callback = callback or SilentCallback()
    callback.on_progress(Progress("loading", 0, train_cfg.iterations, 0, 0))
    seed_everything(train_cfg.seed)
    tokenizer = load_tokenizer(model_cfg.base_model)
    model = build_model(model_cfg, structural_special_ids(tokenizer))
    train_enc = encode_examples(tokenizer, train.examples, model_cfg.max_length)
    dev_enc = encode_examples(tokenizer, dev.examples, model_cfg.max_length)
    sink = WeakLabelWriter(labels_dir or out_dir / "weak_labels", tokenizer)
    trainer = Trainer(model, train_cfg, tokenizer.mask_token_id, tokenizer.pad_token_id or 0, pick_device(device),
                      callback, sink, probe_forward)
    outcome = trainer.fit(train_enc, dev_enc, checkpoint_dir)
    model.load_state_dict(outcome.best_weights)
    total = outcome.state.global_step
    callback.on_progress(Progress("exporting", train_cfg.iterations - 1, train_cfg.iterations, total, total))
    metrics = metrics_summary(outcome.state, train_cfg.metric_for(model_cfg.task))
    metrics["human_rationales"] = {"rows": reviewed_count(train.examples), "train_rows": len(train.examples)}
    explained = explanation_summary(model, dev_enc[: train_cfg.explain_sentences], tokenizer.pad_token_id or 0,
                                    trainer.device, train_cfg.probe_batch_tokens)
    if explained is not None:
        metrics["explanations"] = explained
    parity = write_model_folder(model, tokenizer, out_dir, train_cfg, metrics, dev_enc, model_id,
                                data_info={"train": dataset_info(train), "dev": dataset_info(dev)})
    callback.on_progress(Progress("done", train_cfg.iterations - 1, train_cfg.iterations, total, total,
                                  metrics=metrics))
    return TrainResult(out_dir, metrics, parity)


def explanation_summary(
    model: SSAModel, examples: Sequence[Encoded], pad_id: int, device: torch.device, max_tokens: int
) -> dict[str, Any] | None:
    """Selectivity and faithfulness @20 % of the served attention on (at most `explain_sentences`) dev examples;
    None for variants whose prediction is not pooled by the SSA attention, for regression, and without examples."""
    if not model.config.pools_by_attention or model.config.task == "regression" or not examples:
        return None
    return attention_scores(model, examples, pad_id, device, max_tokens).to_dict()


def dataset_info(ds: Dataset) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for e in ds.examples:
        counts[str(e.label)] = counts.get(str(e.label), 0) + 1
    info: dict[str, Any] = {"source": ds.source, "examples": len(ds.examples), "pair": ds.pair}
    if ds.task == "classification":
        info["class_counts"] = counts
    return info


def metrics_summary(state: TrainState, metric: str) -> dict[str, Any]:
    best = state.history[state.best_iteration]
    return {"metric": metric, "best_iteration": state.best_iteration, "dev": best["dev"], "iterations": state.history}


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
    metrics: dict[str, Any] | None,
    parity_examples: Sequence[Encoded],
    model_id: str | None = None,
    data_info: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Weights and config.json in the Hugging Face layout (with modeling_ssa.py), tokenizer, ONNX (parity-checked),
    ssa.json, metrics.json and the model card (README.md)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, out_dir)
    tokenizer.save_pretrained(out_dir)
    parity = export_and_check(model, out_dir, parity_examples, tokenizer.pad_token_id or 0)
    cfg = model.config
    meta = ssa_metadata(cfg, out_dir, model_id, train_cfg, metrics, parity, pair=_has_pairs(parity_examples))
    meta["pad_token_id"] = tokenizer.pad_token_id or 0
    (out_dir / SSA_FILE).write_text(json.dumps(meta, indent=2))
    if metrics is not None:
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        hub_card(meta, metrics, train_cfg, data_info or {}).save(out_dir / CARD_FILE)
    return parity


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
    metrics: dict[str, Any] | None,
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
        meta["metric"] = metrics["metric"]
        meta["dev_metric"] = metrics["dev"][metrics["metric"]]
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


def label_dataset(
    model_dir: Path, dataset: Dataset, out_path: Path, *, label_mode: str = "keep", seed: int = 42,
    rounds: int = 4, trigger: float = 0.1, device: str | None = None,
) -> dict[str, Any]:
    """Probe a trained model on `dataset` and write the weak token labels of every kept copy as JSONL."""
    from ssa_core.probing import Prober

    model, tokenizer, meta = load_trained(model_dir)
    encoded = encode_examples(tokenizer, dataset.examples, int(meta["max_length"]))
    dev = pick_device(device)
    prober = Prober(model.to(dev), tokenizer.mask_token_id, tokenizer.pad_token_id or 0, dev)
    rng = np.random.default_rng(seed)
    weak, stats = prober.probe(label_mode, encoded, model.config.labels, len(encoded), rng, trigger, rounds)
    tokens = [tokenizer.convert_ids_to_tokens(w.encoded.input_ids) for w in weak]
    write_jsonl(out_path, (weak_label_record(w, 0, True, t) for w, t in zip(weak, tokens, strict=True)))
    return stats.as_dict()
