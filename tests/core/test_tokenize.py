"""Tokenizers: the mask token and structural specials per tokenizer family, pair encoding, padding helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ssa_core.config import ModelConfig
from ssa_core.data.datasets import Example
from ssa_core.model.ssa_model import build_model
from ssa_core.model.tokenize import encode_examples, load_tokenizer, pad_batch, pad_labels, structural_special_ids
from ssa_core.train.probing import Prober

PAIR = Example(0, 1, "Unbelievably, the film's ending works.", "Second part here, sadly.", "positive")


def test_bert_tokenizer_masks_with_its_own_mask_token(tiny_encoder_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    assert tokenizer.mask_token == "[MASK]"
    specials = structural_special_ids(tokenizer)
    assert specials == sorted({tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id})
    assert tokenizer.mask_token_id not in specials and tokenizer.unk_token_id not in specials


def test_roberta_tokenizer_masks_with_its_own_mask_token(roberta_dir: Path) -> None:
    tokenizer = load_tokenizer(roberta_dir)
    vocab = tokenizer.get_vocab()
    assert tokenizer.mask_token == "<mask>" and tokenizer.mask_token_id == vocab["<mask>"]
    assert "[MASK]" not in vocab
    assert structural_special_ids(tokenizer) == sorted(vocab[t] for t in ("<s>", "</s>", "<pad>"))
    (encoded,) = encode_examples(tokenizer, [PAIR], 64)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens[0] == "<s>" and tokens[-1] == "</s>"
    for p in encoded.positions:
        assert tokens[p.index] not in ("<s>", "</s>")


def test_probing_a_roberta_model_uses_mask_never_bert_mask(roberta_dir: Path) -> None:
    tokenizer = load_tokenizer(roberta_dir)
    torch.manual_seed(0)
    cfg = ModelConfig(base_model=str(roberta_dir), method="hybrid", labels=("negative", "positive"), max_length=64)
    model = build_model(cfg, structural_special_ids(tokenizer)).eval()
    seen: list[torch.Tensor] = []
    model.encoder.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw["input_ids"].clone()), with_kwargs=True)
    examples = [
        Example(i, i + 1, text, None, label)
        for i, (text, label) in enumerate(
            [
                ("A fine film with a great cast and a sharp script.", "positive"),
                ("A fine film with a great cast and a sharp script.", "negative"),
                ("Slow, dreary and far too long for its own good.", "negative"),
                ("Slow, dreary and far too long for its own good.", "positive"),
            ]
        )
    ]
    encoded = encode_examples(tokenizer, examples, 64)
    prober = Prober(model, tokenizer.mask_token_id, tokenizer.pad_token_id, torch.device("cpu"))
    prober.keep(encoded, cfg.labels, 4, np.random.default_rng(0), 0.5, rounds=3)
    prober.flip(encoded, np.random.default_rng(0), rounds=2)
    originals = {tuple(e.input_ids) for e in encoded}
    masked_rows = 0
    for batch in seen:
        for row in batch.tolist():
            row = [t for t in row if t != tokenizer.pad_token_id]
            if tuple(row) in originals:
                continue
            masked_rows += 1
            source = next(
                e.input_ids
                for e in encoded
                if len(e.input_ids) == len(row)
                and all(a == b or a == tokenizer.mask_token_id for a, b in zip(row, e.input_ids, strict=True))
            )
            changed = {a for a, b in zip(row, source, strict=True) if a != b}
            assert changed == {tokenizer.mask_token_id}
    assert masked_rows >= 8


def test_pair_encoding_token_types_segments_and_offsets(tiny_encoder_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    (encoded,) = encode_examples(tokenizer, [PAIR], 64)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    first_sep = tokens.index("[SEP]")
    assert encoded.token_type_ids == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)
    assert encoded.segment_positions(0) == list(range(1, first_sep))
    assert encoded.segment_positions(1) == list(range(first_sep + 1, len(tokens) - 1))
    texts = (PAIR.text, PAIR.text_pair or "")
    for p in encoded.positions:
        piece = tokens[p.index].removeprefix("##")
        assert texts[p.segment][p.start : p.end].lower() == piece
    words = [texts[1][p.start : p.end] for p in encoded.positions if p.segment == 1]
    assert words == ["Second", "part", "here", ",", "sadly", "."]


def test_encoding_truncates_to_max_length(tiny_encoder_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    long = Example(0, 1, " ".join(["wonderful"] * 100), "and a pair " * 20, "x")
    (encoded,) = encode_examples(tokenizer, [long], 32)
    assert len(encoded) == 32 and encoded.segment_positions(0) and encoded.segment_positions(1)
    assert encode_examples(tokenizer, [], 32) == []


def test_pad_batch_and_labels() -> None:
    batch = pad_batch([[5, 6, 7], [8]], [[0, 0, 1], [0]], pad_id=9)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert "token_type_ids" not in pad_batch([[1]], None, 0)
    assert pad_labels([[1, 0], [1]], 3).tolist() == [[1, 0, -1], [1, -1, -1]]


def test_an_accent_written_as_a_combining_mark_stays_in_its_word(tiny_encoder_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    example = Example(0, 1, "un cafe\u0301 noir", None, "positive")
    (encoded,) = encode_examples(tokenizer, [example], 32)
    spans = [example.text[p.start : p.end] for p in encoded.positions]
    assert "".join(spans) == example.text.replace(" ", "")  # every character is in a token
    assert spans[-1] == "noir" and "e\u0301" in "".join(spans[1:-1])
