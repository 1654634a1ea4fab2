"""End-to-end operations on datasets and model folders: train, export, label. Used by the CLI and the worker."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data.datasets import Dataset, Example
from ssa_core.data.distractors import DistractorPool, shipped_pool
from ssa_core.data.rationales import reviewed_count
from ssa_core.errors import ConfigError
from ssa_core.export.folder import load_trained, write_model_folder
from ssa_core.model.ssa_model import SSAModel, build_model
from ssa_core.model.tokenize import Encoded, encode_examples, load_tokenizer, structural_special_ids
from ssa_core.records import ExplanationScores, HumanRationales, TrainingMetrics
from ssa_core.train.checkpoint import TrainState
from ssa_core.train.distraction import CopyMaker
from ssa_core.train.explanations import attention_scores
from ssa_core.train.probing import ProbeForward, WeakExample
from ssa_core.train.trainer import Progress, SilentCallback, Trainer, TrainingCallback
from ssa_core.train.weak_labels import label_file, weak_label_record, write_jsonl


@dataclass
class TrainResult:
    out_dir: Path
    metrics: TrainingMetrics  # what metrics.json holds (`metrics.to_dict()`)
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
    distractors: DistractorPool | None = None,
) -> TrainResult:
    """Train an SSA model and write the complete model folder (weights, tokenizer, ONNX, metrics, card).

    distractors: the clauses that distractor copies insert (default: the shipped training pool); used when
    train_cfg.distractor_share > 0 and its sources include "pool"."""
    callback = callback or SilentCallback()
    callback.on_progress(Progress("loading", 0, train_cfg.iterations, 0, 0))
    seed_everything(train_cfg.seed)
    tokenizer = load_tokenizer(model_cfg.base_model)
    model = build_model(model_cfg, structural_special_ids(tokenizer))
    train_enc = encode_examples(tokenizer, train.examples, model_cfg.max_length)
    dev_enc = encode_examples(tokenizer, dev.examples, model_cfg.max_length)
    sink = WeakLabelWriter(labels_dir or out_dir / "weak_labels", tokenizer)
    copy_maker = distractor_copies(tokenizer, model_cfg, train_cfg, distractors)
    trainer = Trainer(model, train_cfg, tokenizer.mask_token_id, tokenizer.pad_token_id or 0, pick_device(device),
                      callback, sink, probe_forward, copy_maker)
    outcome = trainer.fit(train_enc, dev_enc, checkpoint_dir)
    model.load_state_dict(outcome.best_weights)
    total = outcome.state.global_step
    callback.on_progress(Progress("exporting", train_cfg.iterations - 1, train_cfg.iterations, total, total))
    explained = explanation_summary(model, dev_enc[: train_cfg.explain_sentences], tokenizer.pad_token_id or 0,
                                    trainer.device, train_cfg.probe_batch_tokens)
    metrics = replace(metrics_summary(outcome.state, train_cfg.metric_for(model_cfg.task)),
                      human_rationales=HumanRationales(rows=reviewed_count(train.examples),
                                                       train_rows=len(train.examples)),
                      explanations=explained)
    parity, written = write_model_folder(
        model, tokenizer, out_dir, train_cfg, metrics, dev_enc, model_id,
        data_info={"train": dataset_info(train), "dev": dataset_info(dev)},
        served_metrics=lambda folder, measured: served_robustness(folder, measured, dev.examples, train_cfg))
    metrics = written or metrics
    callback.on_progress(Progress("done", train_cfg.iterations - 1, train_cfg.iterations, total, total,
                                  metrics=metrics))
    return TrainResult(out_dir, metrics, parity)


def distractor_copies(tokenizer: PreTrainedTokenizerBase, model_cfg: ModelConfig, train_cfg: TrainConfig,
                      pool: DistractorPool | None) -> CopyMaker | None:
    """The copy maker of a run that makes distractor copies (None when distractor_share is 0)."""
    if train_cfg.distractor_share <= 0:
        return None
    if model_cfg.task == "regression" and train_cfg.distractor_sources != "pool":
        raise ConfigError("a regression task has no other class to take spans from: use distractor_sources pool",
                          field="distractor_sources")
    if train_cfg.distractor_sources == "spans":
        pool = None
    elif pool is None:
        pool = shipped_pool("training")
    return CopyMaker(tokenizer, train_cfg, model_cfg.max_length, pool)


def served_robustness(folder: Path, metrics: TrainingMetrics, dev: Sequence[Example],
                      train_cfg: TrainConfig) -> TrainingMetrics:
    """`metrics` with "robustness": the report of the exported model on its own dev rows, with clauses of the
    shipped report pool (disjoint from the training pool); unchanged with robustness_rows 0."""
    from ssa_core.evaluation.robustness import robustness_report
    from ssa_core.runtime.predictor import Predictor

    if train_cfg.robustness_rows == 0:
        return metrics
    predictor = Predictor.load(folder, provider="cpu")
    report = robustness_report(predictor, dev, shipped_pool("report"), train_cfg.robustness_rows, train_cfg.seed)
    return replace(metrics, robustness=report)


def explanation_summary(
    model: SSAModel, examples: Sequence[Encoded], pad_id: int, device: torch.device, max_tokens: int
) -> ExplanationScores | None:
    """Selectivity and faithfulness @20 % of the served attention on (at most `explain_sentences`) dev examples;
    None for methods whose prediction is not pooled by the SSA attention, for regression, and without examples."""
    if not model.config.pools_by_attention or model.config.task == "regression" or not examples:
        return None
    return attention_scores(model, examples, pad_id, device, max_tokens)


def dataset_info(ds: Dataset) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for e in ds.examples:
        counts[str(e.label)] = counts.get(str(e.label), 0) + 1
    info: dict[str, Any] = {"source": ds.source, "examples": len(ds.examples), "pair": ds.pair}
    if ds.task == "classification":
        info["class_counts"] = counts
    return info


def metrics_summary(state: TrainState, metric: str) -> TrainingMetrics:
    best = state.history[state.best_iteration]
    return TrainingMetrics(metric=metric, best_iteration=state.best_iteration, dev=best.dev,
                           iterations=tuple(state.history))


def label_dataset(
    model_dir: Path, dataset: Dataset, out_path: Path, *, label_mode: str = "keep", seed: int = 42,
    rounds: int = 4, trigger: float = 0.1, device: str | None = None,
) -> dict[str, Any]:
    """Probe a trained model on `dataset` and write the weak token labels of every kept copy as JSONL."""
    from ssa_core.train.probing import Prober

    model, tokenizer, meta = load_trained(model_dir)
    encoded = encode_examples(tokenizer, dataset.examples, int(meta["max_length"]))
    dev = pick_device(device)
    prober = Prober(model.to(dev), tokenizer.mask_token_id, tokenizer.pad_token_id or 0, dev)
    rng = np.random.default_rng(seed)
    weak, stats = prober.probe(label_mode, encoded, model.config.labels, len(encoded), rng, trigger, rounds)
    tokens = [tokenizer.convert_ids_to_tokens(w.encoded.input_ids) for w in weak]
    write_jsonl(out_path, (weak_label_record(w, 0, True, t) for w, t in zip(weak, tokens, strict=True)))
    return stats.as_dict()
