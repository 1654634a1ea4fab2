"""Weak token labels by probing: the span sampler, packed inference, and the keep / flip labelling rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch

from ssa_core.data.textspans import word_groups as group_words
from ssa_core.model.ssa_model import IGNORE_INDEX, SSAModel
from ssa_core.model.tokenize import Encoded, pad_batch

SPAN_LENGTHS = np.array([3, 2, 1])
SPAN_PROBS = np.array([0.3, 0.3, 0.4])
BANDS = 4


def sample_span_mask(positions: Sequence[int], rng: np.random.Generator, trigger: float = 0.1) -> list[int]:
    """Masked positions of one segment: per position, with probability `trigger` mask a span (length 3/2/1,
    p .3/.3/.4) ending at an anchor drawn uniformly from the position's quartile band, clipped to the band."""
    masked: set[int] = set()
    for band in np.array_split(np.asarray(positions, dtype=np.int64), BANDS):
        if len(band) == 0:
            continue
        for _ in range(len(band)):
            if rng.random() >= trigger:
                continue
            anchor = int(rng.integers(len(band)))
            length = int(rng.choice(SPAN_LENGTHS, p=SPAN_PROBS))
            masked.update(int(p) for p in band[max(0, anchor - length + 1) : anchor + 1])
    return sorted(masked)


def sample_example_mask(encoded: Encoded, rng: np.random.Generator, trigger: float) -> list[int]:
    """Span mask over each segment of a text or text pair independently."""
    masked: list[int] = []
    for segment in (0, 1):
        positions = encoded.segment_positions(segment)
        if positions:
            masked += sample_span_mask(positions, rng, trigger)
    return masked


def with_mask(input_ids: Sequence[int], positions: Sequence[int], mask_id: int) -> list[int]:
    ids = list(input_ids)
    for p in positions:
        ids[p] = mask_id
    return ids


@dataclass
class Sequences:
    """Token-id sequences to run through the model (token types optional)."""

    ids: list[list[int]] = field(default_factory=list)
    types: list[list[int]] | None = None

    def add(self, ids: list[int], types: list[int] | None) -> None:
        self.ids.append(ids)
        if types is not None:
            self.types = self.types if self.types is not None else []
            self.types.append(types)


def length_batches(lengths: Sequence[int], max_tokens: int, max_batch: int = 512) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (sorted), each padded size <= max_tokens."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0
    for index in order:
        longest_if_added = max(longest, lengths[index])
        if current and (longest_if_added * (len(current) + 1) > max_tokens or len(current) >= max_batch):
            batches.append(np.asarray(current))
            current, longest_if_added = [], lengths[index]
        current.append(int(index))
        longest = longest_if_added
    if current:
        batches.append(np.asarray(current))
    return batches


@torch.inference_mode()
def packed_outputs(
    model: SSAModel,
    sequences: Sequences,
    pad_id: int,
    max_tokens: int,
    device: torch.device,
    take: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """Run many sequences in length-sorted, token-budgeted batches; return `take(logits)` rows in input order."""
    model.eval()
    lengths = [len(s) for s in sequences.ids]
    results: list[np.ndarray | None] = [None] * len(lengths)
    for batch_index in length_batches(lengths, max_tokens):
        types = [sequences.types[i] for i in batch_index] if sequences.types is not None else None
        batch = pad_batch([sequences.ids[i] for i in batch_index], types, pad_id)
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # [b, C]
        rows = (take(logits) if take is not None else logits).float().cpu().numpy()
        for row, index in zip(rows, batch_index, strict=True):
            results[index] = row
    return np.stack(results) if results else np.zeros((0,))  # type: ignore[arg-type]


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    return logits.float().log_softmax(dim=-1)


Take = Literal["logits", "log_softmax"]  # what a forward pass returns per sequence (a name: it crosses processes)


def run_sequences(model: SSAModel, sequences: Sequences, pad_id: int, max_tokens: int, device: torch.device,
                  take: Take) -> np.ndarray:
    """`packed_outputs` with `take` by name: the one model call of probing, in process or in a probe shard."""
    return packed_outputs(model, sequences, pad_id, max_tokens, device, log_softmax if take == "log_softmax" else None)


class ProbeForward(Protocol):
    """Runs probing's forward passes somewhere else (worker.probe_fanout: Celery shards over worker processes).
    `start(model, iteration, pad_id, max_tokens)` comes before an iteration's probing (the model is fixed until the
    next start);
    `outputs` returns one row per sequence, in input order, as `run_sequences` would on that model."""

    def start(self, model: SSAModel, iteration: int, pad_id: int, max_tokens: int) -> None: ...

    def outputs(self, sequences: Sequences, take: Take) -> np.ndarray: ...


def originals_of(examples: Sequence[Encoded]) -> Sequences:
    """The examples' own token ids (and types) as sequences to run."""
    seqs = Sequences()
    for e in examples:
        seqs.add(e.input_ids, e.token_type_ids)
    return seqs


def word_groups(encoded: Encoded) -> list[list[int]]:
    """Positions of the wordpieces of each word (per segment), in order."""
    return group_words(encoded.positions)


def decisions(logits: np.ndarray, regression: bool) -> np.ndarray:
    """Class ids (argmax) or regression values from [N, C] logits."""
    return logits[:, 0] if regression else logits.argmax(axis=-1)


def same_decision(a: np.ndarray, b: np.ndarray, regression: bool, tolerance: float) -> np.ndarray:
    return np.abs(a - b) <= tolerance if regression else a == b


@dataclass
class WeakExample:
    """A training example with weak token labels (aligned with input_ids; -1 on special tokens): 0/1 labels, or
    graded targets >= 0 (the `graded` rule)."""

    encoded: Encoded
    token_labels: list[float]
    masked: list[int]  # the positions masked in the probe that produced it


@dataclass
class ProbeStats:
    probed: int = 0
    copies: int = 0
    kept: int = 0
    originals_correct: int = 0
    masked_tokens: int = 0
    real_tokens: int = 0
    rounds: int = 0

    def as_dict(self) -> dict[str, float]:
        return {
            "probed_examples": self.probed,
            "masked_copies": self.copies,
            "kept_copies": self.kept,
            "kept_rate": self.kept / self.copies if self.copies else 0.0,
            "original_accuracy": self.originals_correct / self.probed if self.probed else 0.0,
            "masked_token_share": self.masked_tokens / self.real_tokens if self.real_tokens else 0.0,
            "rounds": self.rounds,
        }


def all_ones_labels(encoded: Encoded) -> list[float]:
    """Token labels of an original example: 1 on every real wordpiece, -1 on special tokens."""
    labels: list[float] = [IGNORE_INDEX] * len(encoded)
    for p in encoded.positions:
        labels[p.index] = 1
    return labels


class Prober:
    """Probes a model with masked copies of the training examples and turns the outcome into weak labels."""

    def __init__(
        self,
        model: SSAModel,
        mask_id: int,
        pad_id: int,
        device: torch.device,
        max_tokens: int = 16384,
        regression_tolerance: float = 0.3,
        forward: ProbeForward | None = None,
    ) -> None:
        self.model = model
        self.forward = forward
        self.mask_id = mask_id
        self.pad_id = pad_id
        self.device = device
        self.max_tokens = max_tokens
        self.tolerance = regression_tolerance
        self.regression = model.config.task == "regression"

    def start(self, iteration: int) -> None:
        """Before an iteration's probing: a fan-out forward publishes the model it is to run."""
        if self.forward is not None:
            self.forward.start(self.model, iteration, self.pad_id, self.max_tokens)

    def outputs(self, sequences: Sequences, take: Take = "logits") -> np.ndarray:
        """Rows of `take` per sequence, in input order: in this process, or through the fan-out forward."""
        if self.forward is not None and sequences.ids:
            return self.forward.outputs(sequences, take)
        return run_sequences(self.model, sequences, self.pad_id, self.max_tokens, self.device, take)

    def predict(self, sequences: Sequences) -> np.ndarray:
        return decisions(self.outputs(sequences), self.regression)

    def originals(self, examples: Sequence[Encoded]) -> np.ndarray:
        return self.predict(originals_of(examples))

    def gold(self, examples: Sequence[Encoded], labels: Sequence[str]) -> np.ndarray:
        if self.regression:
            return np.asarray([float(e.example.label) for e in examples])
        index = {name: i for i, name in enumerate(labels)}
        return np.asarray([index[str(e.example.label)] for e in examples])

    def probe(
        self, mode: str, examples: Sequence[Encoded], labels: Sequence[str], wanted: int,
        rng: np.random.Generator, trigger: float, rounds: int,
    ) -> tuple[list[WeakExample], ProbeStats]:
        """Weak labels by the rule `mode` names: graded, keep, flip or contrast."""
        if mode == "graded":
            return self.graded(examples, labels, rng)
        if mode == "flip":
            return self.flip(examples, rng, rounds)
        if mode == "contrast":
            return self.contrast(examples, labels, wanted, rng, trigger, rounds)
        return self.keep(examples, labels, wanted, rng, trigger, rounds)

    def graded(
        self, examples: Sequence[Encoded], labels: Sequence[str], rng: np.random.Generator, words: int = 64
    ) -> tuple[list[WeakExample], ProbeStats]:
        """`graded` rule: every word of every example is masked in a copy of its own (at most `words` words per
        example, drawn at random beyond that), all copies in packed batches. A word's score is how much masking it
        lowers the log-probability of the gold class (regression: how far the prediction moves), clipped at 0 and
        split evenly over its wordpieces; the unprobed wordpieces of a long example stay -1. No copy is kept or
        dropped: every example comes back with its graded targets."""
        stats = ProbeStats(probed=len(examples), rounds=1)
        take: Take = "logits" if self.regression else "log_softmax"
        base = self.outputs(originals_of(examples), take)
        gold = self.gold(examples, labels)
        if not self.regression:
            stats.originals_correct = int((base.argmax(axis=-1) == gold).sum())
        seqs, owners, groups = Sequences(), [], []
        for i, e in enumerate(examples):
            chosen = word_groups(e)
            if len(chosen) > words:
                chosen = [chosen[int(k)] for k in sorted(rng.choice(len(chosen), words, replace=False))]
            for group in chosen:
                seqs.add(with_mask(e.input_ids, group, self.mask_id), e.token_type_ids)
                owners.append(i)
                groups.append(group)
            stats.masked_tokens += sum(len(g) for g in chosen)
            stats.real_tokens += len(e.positions)
        targets: list[list[float]] = [[IGNORE_INDEX] * len(e) for e in examples]
        stats.copies = stats.kept = len(owners)
        if owners:
            masked = self.outputs(seqs, take)
            owner = np.asarray(owners)
            if self.regression:
                drops = np.abs(base[owner, 0] - masked[:, 0])
            else:
                drops = np.clip(base[owner, gold[owner]] - masked[np.arange(len(owner)), gold[owner]], 0.0, None)
            for i, group, drop in zip(owners, groups, drops, strict=True):
                for p in group:
                    targets[i][p] = float(drop) / len(group)
        return [WeakExample(e, targets[i], []) for i, e in enumerate(examples)], stats

    def _predicted_right(
        self, examples: Sequence[Encoded], labels: Sequence[str], stats: ProbeStats
    ) -> tuple[np.ndarray, list[int]]:
        """The model's decisions on the originals, and the indices of those it gets right (counted in stats)."""
        original = self.originals(examples)
        correct = same_decision(original, self.gold(examples, labels), self.regression, self.tolerance)
        stats.originals_correct = int(correct.sum())
        return original, [i for i in range(len(examples)) if correct[i]]

    def keep(
        self,
        examples: Sequence[Encoded],
        labels: Sequence[str],
        wanted: int,
        rng: np.random.Generator,
        trigger: float,
        rounds: int,
    ) -> tuple[list[WeakExample], ProbeStats]:
        """`keep` rule: a masked copy is kept when the original is predicted right and the masked copy keeps that
        prediction; its token labels are 0 on masked wordpieces, 1 elsewhere. Masks are re-drawn (up to `rounds`
        rounds) for examples without a kept copy until `wanted` distinct examples have one."""
        stats = ProbeStats(probed=len(examples))
        original, candidates = self._predicted_right(examples, labels, stats)
        kept: list[WeakExample] = []
        for _ in range(rounds):
            if len(kept) >= wanted or not candidates:
                break
            stats.rounds += 1
            candidates = self._keep_round(examples, candidates, original, rng, trigger, kept, stats)
        return kept, stats

    def _keep_round(
        self,
        examples: Sequence[Encoded],
        candidates: list[int],
        original: np.ndarray,
        rng: np.random.Generator,
        trigger: float,
        kept: list[WeakExample],
        stats: ProbeStats,
    ) -> list[int]:
        """One packed pass over masked copies of `candidates`; returns the candidates still without a kept copy."""
        probed, masks, seqs = self._masked_copies(examples, candidates, rng, trigger, stats)
        if not probed:
            return candidates
        masked_pred = self.predict(seqs)
        stats.copies += len(probed)
        same = same_decision(masked_pred, original[probed], self.regression, self.tolerance)
        still_open = set(candidates)
        for i, mask, keep_it in zip(probed, masks, same, strict=True):
            if keep_it:
                labels = all_ones_labels(examples[i])
                for p in mask:
                    labels[p] = 0
                kept.append(WeakExample(examples[i], labels, mask))
                still_open.discard(i)
        stats.kept += int(same.sum())
        return [i for i in candidates if i in still_open]

    def _masked_copies(
        self, examples: Sequence[Encoded], owners: Sequence[int], rng: np.random.Generator, trigger: float,
        stats: ProbeStats,
    ) -> tuple[list[int], list[list[int]], Sequences]:
        """One span-masked copy per entry of `owners` (an example index; repeat it for several copies), in order;
        entries whose draw masks nothing are skipped. Returns (owners kept, their masks, the masked sequences)."""
        kept, masks, seqs = [], [], Sequences()
        for i in owners:
            mask = sample_example_mask(examples[i], rng, trigger)
            if not mask:
                continue
            kept.append(i)
            masks.append(mask)
            seqs.add(with_mask(examples[i].input_ids, mask, self.mask_id), examples[i].token_type_ids)
            stats.masked_tokens += len(mask)
            stats.real_tokens += len(examples[i].positions)
        return kept, masks, seqs

    def contrast(
        self,
        examples: Sequence[Encoded],
        labels: Sequence[str],
        wanted: int,
        rng: np.random.Generator,
        trigger: float,
        max_rounds: int,
    ) -> tuple[list[WeakExample], ProbeStats]:
        """`contrast` rule: span-masked copies of correctly predicted examples; a masked wordpiece gets 0 when the
        prediction held and 1 when it changed; unmasked wordpieces stay -1. Unlike `keep`, it never marks a token
        1 merely because it was not masked, so the labels say which spans the decision needs."""
        stats = ProbeStats(probed=len(examples))
        original, candidates = self._predicted_right(examples, labels, stats)
        rounds = min(max_rounds, -(-wanted // max(1, len(candidates))))
        owners, masks, seqs = self._masked_copies(examples, candidates * (rounds if candidates else 0), rng, trigger,
                                                  stats)
        stats.rounds = rounds if candidates else 0
        if not owners:
            return [], stats
        held = same_decision(self.predict(seqs), original[owners], self.regression, self.tolerance)
        stats.copies, stats.kept = len(owners), int(held.sum())
        weak = []
        for i, mask, same in zip(owners, masks, held, strict=True):
            token_labels: list[float] = [IGNORE_INDEX] * len(examples[i])
            for p in mask:
                token_labels[p] = 0 if same else 1
            weak.append(WeakExample(examples[i], token_labels, mask))
        return weak, stats

    def flip(
        self, examples: Sequence[Encoded], rng: np.random.Generator, rounds: int
    ) -> tuple[list[WeakExample], ProbeStats]:
        """`flip` rule: mask one wordpiece per copy (`rounds` distinct wordpieces per example); a wordpiece whose
        masking changes the prediction gets label 1, otherwise 0; unprobed wordpieces stay -1."""
        stats = ProbeStats(probed=len(examples), rounds=rounds)
        original = self.originals(examples)
        chosen = [self._flip_positions(e, rng, rounds) for e in examples]
        seqs, owner, where = Sequences(), [], []
        for i, positions in enumerate(chosen):
            for p in positions:
                seqs.add(with_mask(examples[i].input_ids, [p], self.mask_id), examples[i].token_type_ids)
                owner.append(i)
                where.append(p)
        stats.copies = len(owner)
        stats.masked_tokens = len(owner)
        stats.real_tokens = sum(len(e.positions) for e in examples)
        labels: list[list[float]] = [[IGNORE_INDEX] * len(e) for e in examples]
        if owner:
            masked_pred = self.predict(seqs)
            same = same_decision(masked_pred, original[owner], self.regression, self.tolerance)
            for i, p, unchanged in zip(owner, where, same, strict=True):
                labels[i][p] = 0 if unchanged else 1
            stats.kept = int((~same).sum())  # copies whose prediction flipped
        weak = [WeakExample(e, labels[i], chosen[i]) for i, e in enumerate(examples) if chosen[i]]
        return weak, stats

    @staticmethod
    def _flip_positions(encoded: Encoded, rng: np.random.Generator, rounds: int) -> list[int]:
        indices = [p.index for p in encoded.positions]
        if not indices:
            return []
        picked = rng.choice(len(indices), size=min(rounds, len(indices)), replace=False)
        return sorted(indices[int(k)] for k in picked)
