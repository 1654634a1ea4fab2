"""Distractor copies for SSA training: a training row with a span inserted that, by construction, does not bear on
its label (an off-topic clause from a pool, or a fragment of a row of another class), at its start, middle or end.

The copy keeps the row's class label; its inserted wordpieces get token target 0 (no graded mass, label 0 under the
0/1 rules), and the trainer adds two terms for it (`distraction_loss`): a consistency term that ties the copy's
prediction to the original's (KL of the copy's class distribution from the original's, the original detached) and a
penalty on the SSA attention mass that lands on the inserted wordpieces. See docs/ROBUSTNESS.md."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from ssa_core.config import TrainConfig
from ssa_core.data.datasets import Example
from ssa_core.data.distractors import DistractorPool, Insertion, insert
from ssa_core.model.ssa_model import IGNORE_INDEX, SSAOutput
from ssa_core.model.tokenize import Encoded, encode_examples

POSITIONS = ("start", "middle", "end")


@dataclass(frozen=True)
class DistractorCopy:
    """A training row with an inserted span: the copy, its token targets and which wordpieces are inserted."""

    original: int  # index of the row's item in the iteration's training set
    encoded: Encoded
    token_labels: list[float]  # per position of `encoded`: the original's targets moved over, 0 on inserted pieces
    inserted: list[bool]  # per position of `encoded`: inside the inserted span
    source: str  # "pool" | "spans"


def spans_from_rows(rows: Sequence[Encoded], index: int, rng: np.random.Generator, min_words: int = 3,
                    max_words: int = 8) -> str | None:
    """A run of 3–8 consecutive words of a random row of another class than row `index` (None: no other class)."""
    label = str(rows[index].example.label)
    others = [i for i, row in enumerate(rows) if str(row.example.label) != label]
    if not others:
        return None
    words = rows[int(rng.choice(others))].example.text.split()
    if not words:
        return None
    size = int(rng.integers(min(min_words, len(words)), min(max_words, len(words)) + 1))
    start = int(rng.integers(0, len(words) - size + 1))
    return " ".join(words[start : start + size])


def moved_labels(original: Encoded, labels: Sequence[float], copy: Encoded, place: Insertion) -> tuple[list[float],
                                                                                                         list[bool]]:
    """The original's token targets on the copy's wordpieces (matched by character start, shifted past the
    inserted block), 0 on the inserted wordpieces, -1 on special tokens and on pieces with no counterpart (the
    separators around the span)."""
    text, shift = original.example.text, len(place.text) - len(original.example.text)
    block = inserted_block(text, place)  # copy.text[block : block + shift] is new; the rest is the original's
    by_start = {(p.segment, p.start): labels[p.index] for p in original.positions if p.index < len(labels)}
    out = [float(IGNORE_INDEX)] * len(copy)
    inserted = [False] * len(copy)
    for p in copy.positions:
        if p.segment == 0 and p.start < place.end and p.end > place.start:
            out[p.index], inserted[p.index] = 0.0, True
            continue
        if p.segment == 0 and block <= p.start < block + shift:
            continue
        start = p.start - shift if p.segment == 0 and p.start >= block + shift else p.start
        out[p.index] = float(by_start.get((p.segment, start), IGNORE_INDEX))
    return out, inserted


def inserted_block(text: str, place: Insertion) -> int:
    """Where the block the insertion added (span and separators) starts in the copy: the copy is the original with
    len(copy) − len(original) characters added at one place, at or before the span's start."""
    shift = len(place.text) - len(text)
    for start in range(min(place.start, len(text)), -1, -1):
        if place.text[:start] == text[:start] and place.text[start + shift :] == text[start:]:
            return start
    return place.start


class CopyMaker:
    """Makes an iteration's distractor copies: a share of the rows, each with one span from a source drawn at
    random among those configured ("pool": an off-topic clause; "spans": words of a row of another class)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, cfg: TrainConfig, max_length: int,
                 pool: DistractorPool | None) -> None:
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.max_length = max_length
        self.clauses = [entry.text for entry in pool.entries] if pool is not None else []
        self.sources = [s for s in self.source_names(cfg) if s != "pool" or self.clauses]

    def digest(self) -> str:
        """What the copies depend on beyond the config (the pool's clauses), for the run's fingerprint."""
        if self.cfg.distractor_share <= 0:
            return ""
        return hashlib.sha256("\n".join(self.clauses).encode()).hexdigest()[:16]

    @staticmethod
    def source_names(cfg: TrainConfig) -> tuple[str, ...]:
        return ("pool", "spans") if cfg.distractor_sources == "both" else (cfg.distractor_sources,)

    def make(self, items: Sequence[tuple[Encoded, list[float]]], rng: np.random.Generator) -> list[DistractorCopy]:
        """Copies of round(share · N) items drawn at random (items whose copy would lose its inserted span to
        truncation are skipped)."""
        if not self.sources or not items or self.cfg.distractor_share <= 0:
            return []
        wanted = min(len(items), round(self.cfg.distractor_share * len(items)))
        chosen = np.sort(rng.choice(len(items), size=wanted, replace=False))
        rows = [encoded for encoded, _ in items]
        planned: list[tuple[int, Insertion, str]] = []
        for n, i in enumerate(int(c) for c in chosen):
            source = self.sources[int(rng.integers(len(self.sources)))]
            span = (self.clauses[int(rng.integers(len(self.clauses)))] if source == "pool"
                    else spans_from_rows(rows, i, rng))
            if span:
                planned.append((i, insert(rows[i].example.text, span, POSITIONS[n % 3]), source))
        examples = [Example(rows[i].example.example_id, rows[i].example.row, place.text, rows[i].example.text_pair,
                            rows[i].example.label) for i, place, _ in planned]
        copies = []
        for (i, place, source), encoded in zip(planned, encode_examples(self.tokenizer, examples, self.max_length),
                                               strict=True):
            labels, inserted = moved_labels(rows[i], items[i][1], encoded, place)
            if any(inserted):
                copies.append(DistractorCopy(i, encoded, labels, inserted, source))
        return copies


@dataclass(frozen=True)
class DistractionLosses:
    consistency: torch.Tensor  # scalar
    penalty: torch.Tensor  # scalar


def distraction_loss(
    output: SSAOutput,
    originals: torch.Tensor,  # [K] row of each copy's original in the batch
    copies: torch.Tensor,  # [K] row of each copy in the batch
    inserted: torch.Tensor,  # [B, T] bool: inserted wordpieces (False outside copies)
    regression: bool,
) -> DistractionLosses:
    """Consistency: mean over copies of KL(p(original) ‖ p(copy)), the original detached (regression: squared
    difference of the outputs). Penalty: mean over copies of the SSA attention mass on the inserted wordpieces
    (0 for variants whose attention does not pool)."""
    if copies.numel() == 0:
        zero = output.logits.sum() * 0.0
        return DistractionLosses(zero, zero)
    target = output.logits[originals].detach()  # [K, C]
    copy_logits = output.logits[copies]  # [K, C]
    if regression:
        consistency = F.mse_loss(copy_logits, target)
    else:
        consistency = F.kl_div(copy_logits.log_softmax(-1), target.log_softmax(-1), log_target=True,
                               reduction="batchmean")
    mass = (output.attention * inserted.to(output.attention.dtype)).sum(dim=-1)  # [B]
    return DistractionLosses(consistency, mass[copies].mean())
