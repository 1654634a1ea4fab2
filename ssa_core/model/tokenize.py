"""Tokenizer loading and encoding for training and probing (transformers fast tokenizers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ssa_core.data.datasets import Example
from ssa_core.data.textspans import TokenPosition, token_positions


@dataclass
class Encoded:
    """One example as wordpiece ids, with where its real tokens are."""

    example: Example
    input_ids: list[int]
    token_type_ids: list[int] | None
    positions: list[TokenPosition]  # real (non-special) wordpieces

    def __len__(self) -> int:
        return len(self.input_ids)

    def segment_positions(self, segment: int) -> list[int]:
        return [p.index for p in self.positions if p.segment == segment]


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(f"{name_or_path}: a fast tokenizer (tokenizer.json) is required for character offsets")
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{name_or_path}: the tokenizer has no mask token, which SSA probing needs")
    return tokenizer


def structural_special_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids that never carry content: [CLS]/[SEP]/[PAD] (or <s>/</s>/<pad>); not [UNK] and not [MASK]."""
    names = ("cls_token_id", "sep_token_id", "pad_token_id", "bos_token_id", "eos_token_id")
    ids = {getattr(tokenizer, name) for name in names}
    return sorted(i for i in ids if i is not None)


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], max_length: int
) -> list[Encoded]:
    """Encode examples (texts or pairs) with truncation, keeping character offsets of every wordpiece."""
    if not examples:
        return []
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = pairs[0] is not None
    batch = tokenizer(
        texts,
        pairs if has_pairs else None,
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_token_type_ids=True,
    )
    encoded = []
    for i, example in enumerate(examples):
        item = batch[i]
        texts_of = (example.text, example.text_pair or "")
        positions = token_positions(item.offsets, item.word_ids, item.sequence_ids, texts_of)
        types = batch["token_type_ids"][i] if "token_type_ids" in batch else None
        encoded.append(Encoded(example, list(batch["input_ids"][i]), types, positions))
    return encoded


def pad_batch(
    sequences: Sequence[Sequence[int]], token_types: Sequence[Sequence[int]] | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence: input_ids, attention_mask [, token_type_ids], each [B, T]."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if token_types is not None:
        types = torch.zeros((len(sequences), length), dtype=torch.long)
        for row, seq in enumerate(token_types):
            types[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        batch["token_type_ids"] = types
    return batch


def batch_tensors(encoded: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Padded model inputs of encoded examples (token types when the tokenizer makes them)."""
    types = [e.token_type_ids for e in encoded if e.token_type_ids is not None]
    return pad_batch([e.input_ids for e in encoded], types if len(types) == len(encoded) else None, pad_id)


def pad_labels(token_labels: Sequence[Sequence[float]], length: int) -> torch.Tensor:
    """[B, T] float token labels (0/1 labels or graded targets) padded with -1."""
    out = torch.full((len(token_labels), length), -1.0, dtype=torch.float)
    for row, labels in enumerate(token_labels):
        out[row, : len(labels)] = torch.tensor(labels, dtype=torch.float)
    return out
