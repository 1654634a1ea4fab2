"""The SSA iteration loop: train, probe, relabel, evaluate, checkpoint; with progress callbacks and cancellation."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ssa_core.config import ModelConfig, TrainConfig
from ssa_core.data.rationales import restrict_to_spans, reviewed_count, token_targets
from ssa_core.evaluation.metrics import classification_metrics, regression_metrics
from ssa_core.model.ssa_model import IGNORE_INDEX, SSAModel, ssa_loss
from ssa_core.model.tokenize import Encoded, batch_tensors, pad_labels
from ssa_core.records import IterationRecord, ProbeSummary, TrainingMetrics
from ssa_core.train.checkpoint import TrainState, load_checkpoint, restore_optimizer, save_checkpoint
from ssa_core.train.distraction import CopyMaker, DistractorCopy, distraction_loss
from ssa_core.train.probing import (
    ProbeForward,
    Prober,
    ProbeStats,
    WeakExample,
    all_ones_labels,
    originals_of,
    packed_outputs,
)


class TrainingCancelled(RuntimeError):
    """Raised at a step boundary when the callback asks to stop."""


@dataclass
class Progress:
    stage: str  # loading | probing | training | evaluating | evaluated (metrics set) | exporting | done
    iteration: int
    iterations: int
    step: int
    total_steps: int
    # "evaluated": the iteration's record; "done": the run's metrics
    metrics: IterationRecord | TrainingMetrics | None = None


class TrainingCallback(Protocol):
    def on_progress(self, progress: Progress) -> None: ...

    def should_stop(self) -> bool: ...


class SilentCallback:
    def on_progress(self, progress: Progress) -> None:
        return None

    def should_stop(self) -> bool:
        return False


WeakLabelSink = Callable[[int, Sequence[WeakExample], set[int]], None]


def no_decay(name: str) -> bool:
    """Biases and LayerNorm weights are not decayed."""
    lower = name.lower()
    return lower.endswith("bias") or "layernorm" in lower or ".norm." in lower


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on everything but biases and LayerNorm weights."""
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        (plain if no_decay(name) else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def bf16_autocast_usable(device: torch.device) -> bool:
    """Training runs its forward pass and loss under bfloat16 autocast on a CUDA device that supports bfloat16
    (weights, gradients and the optimizer stay float32; bfloat16 has float32's range, so no loss scaling); on CPU and
    older GPUs it runs in float32 as before."""
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[object]:
    """bfloat16 autocast on `device` when `enabled`, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def linear_schedule(step: int, total: int, warmup_ratio: float) -> float:
    """Multiplier of the base learning rate: linear warm-up, then linear decay to 0."""
    warmup = max(1, int(total * warmup_ratio))
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def fingerprint(model_cfg: ModelConfig, train_cfg: TrainConfig, train: Sequence[Encoded], extra: str = "") -> str:
    """Identifies a run, so that a checkpoint is only resumed by the run that wrote it (`extra`: what else the run
    depends on, such as the distractor pool)."""
    digest = hashlib.sha256(json.dumps([model_cfg.to_dict(), train_cfg.training_dict()], sort_keys=True).encode())
    if extra:
        digest.update(extra.encode())
    for e in train:
        key = (e.input_ids, e.example.label) if e.example.rationale is None else (e.input_ids, e.example.label,
                                                                                  e.example.rationale)
        digest.update(repr(key).encode())
    return digest.hexdigest()[:16]


@dataclass
class TrainOutcome:
    best_weights: dict[str, torch.Tensor]
    state: TrainState


class Trainer:
    """Runs the SSA iterations on one model (see SSA_METHOD.md, 'Iterations')."""

    def __init__(
        self,
        model: SSAModel,
        train_cfg: TrainConfig,
        mask_id: int,
        pad_id: int,
        device: torch.device,
        callback: TrainingCallback | None = None,
        weak_label_sink: WeakLabelSink | None = None,
        probe_forward: ProbeForward | None = None,
        copy_maker: CopyMaker | None = None,
    ) -> None:
        self.model = model.to(device)
        self.copy_maker = copy_maker
        self.cfg = train_cfg
        self.model_cfg = model.config
        self.pad_id = pad_id
        self.device = device
        self.callback = callback or SilentCallback()
        self.sink = weak_label_sink
        self.optimizer = make_optimizer(model, train_cfg)
        self.bf16 = bf16_autocast_usable(device)
        self.prober = Prober(model, mask_id, pad_id, device, train_cfg.probe_batch_tokens,
                             train_cfg.regression_tolerance, probe_forward)

    # ---- the loop ------------------------------------------------------------------------------------
    def fit(self, train: list[Encoded], dev: list[Encoded], checkpoint_dir: Path | None = None) -> TrainOutcome:
        extra = self.copy_maker.digest() if self.copy_maker is not None else ""
        state = TrainState(fingerprint(self.model_cfg, self.cfg, train, extra))
        best = self._weights()
        if checkpoint_dir is not None:
            state, best = self._resume(checkpoint_dir, state, best)
        total = self.total_steps(len(train), reviewed_count(e.example for e in train))
        for iteration in range(state.completed_iterations, self.cfg.iterations):
            started = time.perf_counter()
            record = replace(self._iteration(iteration, train, dev, state, total),
                             seconds=round(time.perf_counter() - started, 2))
            state.history.append(record)
            state.completed_iterations = iteration + 1
            score = record.dev[self.cfg.metric_for(self.model_cfg.task)]
            if score > state.best_score:
                state.best_score, state.best_iteration, best = score, iteration, self._weights()
            self._progress("evaluated", iteration, state.global_step, total, metrics=record)
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, self.model, best, self.optimizer, state)
        return TrainOutcome(best, state)

    def total_steps(self, n: int, reviewed: int = 0) -> int:
        """Optimizer steps over all iterations (an "augment" iteration e >= 1 also runs its r·N probed copies; rows
        with reviewed rationales are not among the r·N probed copies)."""
        probed = n - reviewed if self.model_cfg.has_token_head else n
        sizes = [n + (round(self.cfg.share(e) * probed) if e and self.cfg.schedule == "augment" else 0)
                 for e in range(self.cfg.iterations)]
        return sum(math.ceil(size / self.cfg.batch_size) for size in sizes)

    def _iteration(
        self, iteration: int, train: list[Encoded], dev: list[Encoded], state: TrainState, total: int
    ) -> IterationRecord:
        rng = np.random.default_rng([self.cfg.seed, iteration])
        torch.manual_seed(self.cfg.seed * 1000 + iteration)
        items, probe = self._training_set(iteration, train, rng, state, total)
        copies = self.copy_maker.make(items, rng) if iteration and self.copy_maker is not None else []
        losses = self._epoch(items, copies, rng, iteration, state, total)
        self._progress("evaluating", iteration, state.global_step, total)
        return IterationRecord(iteration=iteration, share=self.cfg.share(iteration) if iteration else 0.0,
                               train_loss=losses["train_loss"], cls_loss=losses["cls_loss"],
                               tok_loss=losses["tok_loss"], consistency_loss=losses.get("consistency_loss"),
                               distractor_attention=losses.get("distractor_attention"),
                               distractor_copies=len(copies) if copies else None, dev=self.evaluate(dev),
                               probe=probe)

    def _training_set(
        self, iteration: int, train: list[Encoded], rng: np.random.Generator, state: TrainState, total: int
    ) -> tuple[list[tuple[Encoded, list[float]]], ProbeSummary | None]:
        """Iteration 0 (and baseline): all originals, reviewed rows included, on the originals' rule (plain
        fine-tuning: under `graded` no token targets at all). Later: r·N probed copies + (1 − r)·N originals
        ("replace"), or all N originals + r·N probed copies ("augment"). Rows with reviewed rationales are not drawn
        for the weak labels: from iteration 1 on they train in every iteration on their reviewed targets
        (`_reviewed_set`), and r·N counts the other rows only."""
        if iteration == 0 or not self.model_cfg.has_token_head:
            return [(e, self._original_labels(e)) for e in train], None
        reviewed = [e for e in train if e.example.rationale]
        if reviewed:
            others = [e for e in train if not e.example.rationale]
            items, probe = self._weak_set(iteration, others, rng, state, total)
            kept, even = self._reviewed_set(reviewed, rng)
            return items + kept, replace(probe, reviewed=len(reviewed), reviewed_even=even)
        return self._weak_set(iteration, train, rng, state, total)

    def _reviewed_set(
        self, reviewed: list[Encoded], rng: np.random.Generator
    ) -> tuple[list[tuple[Encoded, list[float]]], int | None]:
        """The reviewed rows with their token targets. 0/1 rules: 1 on the wordpieces inside the reviewed spans, 0 on
        the text's others (`token_targets`). `graded`: the model's own graded probe of the row (as for the weak
        rows) with the weight outside the reviewed spans set to 0, so the target keeps the model's grading among the
        reviewed words instead of spreading evenly over them; a row whose reviewed words carry no probe weight (the
        model's decision does not rest on them yet) falls back to the even 1/0 target (counted as
        `reviewed_even`)."""
        spans = [token_targets(e.positions, len(e), e.example.rationale or ()) for e in reviewed]
        if not self.graded:
            return list(zip(reviewed, spans, strict=True)), None
        weak, _ = self.prober.graded(reviewed, self.model_cfg.labels, rng, self.cfg.probe_words)
        items: list[tuple[Encoded, list[float]]] = []
        even = 0
        for w, flat in zip(weak, spans, strict=True):
            target = restrict_to_spans(w.token_labels, flat)
            if target is None:
                even += 1
                target = flat
            items.append((w.encoded, target))
        return items, even

    def _weak_set(
        self, iteration: int, train: list[Encoded], rng: np.random.Generator, state: TrainState, total: int
    ) -> tuple[list[tuple[Encoded, list[float]]], ProbeSummary]:
        self._progress("probing", iteration, state.global_step, total)
        self.prober.start(iteration)
        if self.graded:
            return self._graded_set(iteration, train, rng)
        originals = [(e, self._original_labels(e)) for e in train]
        wanted = round(self.cfg.share(iteration) * len(train))
        weak, stats = self._probe(train, wanted, rng)
        chosen, rest = self._select(train, weak, wanted, rng)
        if self.sink is not None:
            self.sink(iteration, weak, {int(i) for i in chosen})
        items = [(weak[int(i)].encoded, weak[int(i)].token_labels) for i in chosen]
        items += [originals[int(i)] for i in rest]
        return items, ProbeSummary.from_dict({**stats.as_dict(), **label_stats([weak[int(i)] for i in chosen]),
                                              "selected": len(chosen)})

    def _graded_set(
        self, iteration: int, train: list[Encoded], rng: np.random.Generator
    ) -> tuple[list[tuple[Encoded, list[float]]], ProbeSummary]:
        """The `graded` rule: r·N examples drawn at random are probed word by word and carry their graded targets;
        the other (1 − r)·N originals train the classifier only (no token targets)."""
        wanted = round(self.cfg.share(iteration) * len(train))
        drawn = np.sort(rng.choice(len(train), size=wanted, replace=False))
        weak, stats = self.prober.graded([train[int(i)] for i in drawn], self.model_cfg.labels, rng,
                                         self.cfg.probe_words)
        if self.sink is not None:
            self.sink(iteration, weak, set(range(len(weak))))
        probed = {int(i) for i in drawn}
        items = [(w.encoded, w.token_labels) for w in weak]
        items += [(e, self._original_labels(e)) for i, e in enumerate(train) if i not in probed]
        return items, ProbeSummary.from_dict({**stats.as_dict(), **graded_target_stats(weak), "selected": len(weak)})

    @property
    def graded(self) -> bool:
        return self.cfg.label_mode == "graded"

    def _select(
        self, train: list[Encoded], weak: list[WeakExample], wanted: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the probed copies and of the originals that make up the iteration's training set.

        share_balance "class": each class contributes probed copies in proportion to its size, so the class mix of
        every iteration equals the data's (kept copies come only from correctly predicted examples, which a biased
        early model draws almost all from one class). "none": the released code's uniform draw."""
        augment = self.cfg.schedule == "augment"
        if self.cfg.share_balance == "none" or self.model_cfg.task == "regression":
            chosen = rng.choice(len(weak), size=min(wanted, len(weak)), replace=False) if weak else np.zeros(0, int)
            rest = np.arange(len(train)) if augment else rng.choice(len(train), len(train) - len(chosen), replace=False)
            return chosen, rest
        share = wanted / max(1, len(train))
        chosen_parts: list[np.ndarray] = [np.zeros(0, int)]  # annotated: numpy < 2.3 types the parts differently
        rest_parts: list[np.ndarray] = [np.zeros(0, int)]
        for label in self.model_cfg.labels:
            pool = np.asarray([i for i, w in enumerate(weak) if str(w.encoded.example.label) == label], dtype=int)
            members = np.asarray([i for i, e in enumerate(train) if str(e.example.label) == label], dtype=int)
            quota = min(round(share * len(members)), len(pool))
            chosen_parts.append(rng.choice(pool, size=quota, replace=False))
            rest_parts.append(members if augment else rng.choice(members, size=len(members) - quota, replace=False))
        return np.concatenate(chosen_parts), np.concatenate(rest_parts)

    def _original_labels(self, encoded: Encoded) -> list[float]:
        """Token labels of an unprobed original (reviewed rows too: their reviewed targets come from
        `_reviewed_set`, from iteration 1 on)."""
        if self.cfg.original_labels == "ignore" or self.graded:
            return [IGNORE_INDEX] * len(encoded)
        return all_ones_labels(encoded)

    def _probe(self, train: list[Encoded], wanted: int, rng: np.random.Generator) -> tuple[list[WeakExample],
                                                                                           ProbeStats]:
        return self.prober.probe(self.cfg.label_mode, train, self.model_cfg.labels, wanted, rng,
                                 self.cfg.mask_trigger, self.cfg.probe_rounds)

    def _epoch(
        self, items: list[tuple[Encoded, list[float]]], copies: list[DistractorCopy], rng: np.random.Generator,
        iteration: int, state: TrainState, total: int,
    ) -> dict[str, float]:
        """One pass over `items`; each distractor copy trains in the same batch as its original (so the
        consistency term compares the two under the same weights)."""
        self.model.train()
        self._progress("training", iteration, state.global_step, total)
        copies_of: dict[int, list[DistractorCopy]] = {}
        for copy in copies:
            copies_of.setdefault(copy.original, []).append(copy)
        sums = np.zeros(5)
        batches = 0
        for indices in length_grouped_batches([len(e) for e, _ in items], self.cfg.batch_size, rng):
            if self.callback.should_stop():
                raise TrainingCancelled(f"cancelled in iteration {iteration} at step {state.global_step}")
            batch = [items[int(i)] for i in indices]
            riding = [(row, copy) for row, i in enumerate(indices) for copy in copies_of.get(int(i), ())]
            sums += self._step(batch, state.global_step, total, riding)
            batches += 1
            state.global_step += 1
            self._progress("training", iteration, state.global_step, total)
        mean = sums / max(1, batches)
        losses = {"train_loss": float(mean[0]), "cls_loss": float(mean[1]), "tok_loss": float(mean[2])}
        if copies:
            losses |= {"consistency_loss": float(mean[3]), "distractor_attention": float(mean[4])}
        return losses

    def _step(self, batch: list[tuple[Encoded, list[float]]], step: int, total: int,
              copies: Sequence[tuple[int, DistractorCopy]] = ()) -> np.ndarray:
        """One optimizer step on `batch` plus its distractor copies (each with its original's row in the batch).
        Returns [total loss, class loss, token loss, consistency, attention mass on inserted spans]."""
        encoded = [e for e, _ in batch] + [c.encoded for _, c in copies]
        inputs = batch_tensors(encoded, self.pad_id)  # each [B, T], B = batch + copies
        length = inputs["input_ids"].shape[1]
        labels = [labels for _, labels in batch] + [c.token_labels for _, c in copies]
        token_labels = pad_labels(labels, length)  # [B, T]
        inserted = torch.zeros((len(encoded), length), dtype=torch.bool)  # [B, T]
        for k, (_, copy) in enumerate(copies):
            inserted[len(batch) + k, : len(copy.inserted)] = torch.tensor(copy.inserted)
        originals = torch.tensor([row for row, _ in copies], dtype=torch.long)  # [K]
        copy_rows = torch.arange(len(batch), len(encoded), dtype=torch.long)  # [K]
        targets = self._targets(encoded)  # [B]
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.learning_rate * linear_schedule(step, total, self.cfg.warmup_ratio)
        with autocast(self.device, self.bf16):
            output = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
            loss, cls_loss, tok_loss = ssa_loss(output, targets.to(self.device), token_labels.to(self.device),
                                                self.model_cfg, graded=self.graded)
            extra = distraction_loss(output, originals.to(self.device), copy_rows.to(self.device),
                                     inserted.to(self.device), self.model_cfg.task == "regression")
            loss = loss + self.cfg.consistency_weight * extra.consistency + self.cfg.distractor_penalty * extra.penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        return np.array([loss.item(), cls_loss.item(), tok_loss.item(), extra.consistency.item(),
                         extra.penalty.item()])

    def _targets(self, encoded: Sequence[Encoded]) -> torch.Tensor:
        if self.model_cfg.task == "regression":
            return torch.tensor([float(e.example.label) for e in encoded], dtype=torch.float)
        index = {name: i for i, name in enumerate(self.model_cfg.labels)}
        return torch.tensor([index[str(e.example.label)] for e in encoded], dtype=torch.long)

    # ---- evaluation ----------------------------------------------------------------------------------
    def predict_logits(self, examples: Sequence[Encoded]) -> np.ndarray:
        """[N, C] logits in input order, in packed eval batches."""
        return packed_outputs(self.model, originals_of(examples), self.pad_id, self.cfg.probe_batch_tokens,
                              self.device)

    def evaluate(self, examples: Sequence[Encoded]) -> dict[str, float]:
        """The task's metrics on the full split."""
        logits = self.predict_logits(examples)
        gold = self._targets(examples).numpy()
        if self.model_cfg.task == "regression":
            return regression_metrics(gold.astype(float), logits[:, 0].astype(float))
        return classification_metrics(gold, logits.argmax(axis=-1), len(self.model_cfg.labels))

    # ---- state ---------------------------------------------------------------------------------------
    def _weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _resume(
        self, directory: Path, state: TrainState, best: dict[str, torch.Tensor]
    ) -> tuple[TrainState, dict[str, torch.Tensor]]:
        checkpoint = load_checkpoint(directory)
        if checkpoint is None:
            return state, best
        if checkpoint.state.fingerprint != state.fingerprint:
            raise ValueError(f"checkpoint in {directory} belongs to another run (different data or config)")
        self.model.load_state_dict(checkpoint.model)
        restore_optimizer(self.optimizer, checkpoint.optimizer, checkpoint.param_groups)
        return checkpoint.state, checkpoint.best

    def _progress(self, stage: str, iteration: int, step: int, total: int,
                  metrics: IterationRecord | None = None) -> None:
        self.callback.on_progress(Progress(stage, iteration, self.cfg.iterations, step, total, metrics))


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                           group: int = 50) -> list[np.ndarray]:
    """Random batches of similar length: shuffle, sort within windows of `group` batches, shuffle the batches.

    Cuts padding (and CPU time) roughly in half on sentence data while every epoch still sees a random order."""
    order = rng.permutation(len(lengths))
    window = batch_size * group
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def graded_target_stats(weak: Sequence[WeakExample]) -> dict[str, float]:
    """How sharp the graded targets are: the share of examples with any target mass, and the mean normalised entropy
    of their target distributions over the probed wordpieces (1.0 = every wordpiece equally important)."""
    entropies: list[float] = []
    for w in weak:
        mass = np.asarray([t for t in w.token_labels if t >= 0], dtype=float)
        total = mass.sum()
        if total <= 0 or len(mass) < 2:
            continue
        share = mass[mass > 0] / total
        entropies.append(float(-(share * np.log(share)).sum() / np.log(len(mass))))
    return {
        "examples_with_targets": len(entropies) / len(weak) if weak else 0.0,
        "target_entropy": float(np.mean(entropies)) if entropies else 0.0,
    }


def label_stats(weak: Sequence[WeakExample]) -> dict[str, float]:
    """How the selected weak labels look: share of tokens marked 0, and mean labelled tokens per example."""
    labelled = [lab for w in weak for lab in w.token_labels if lab >= 0]
    zeros = sum(1 for lab in labelled if lab == 0)
    return {
        "zero_label_share": zeros / len(labelled) if labelled else 0.0,
        "labelled_tokens_per_example": len(labelled) / len(weak) if weak else 0.0,
    }
