"""Token and word spans: character offsets, attention summed and importance maxed over a word's wordpieces."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssa_core.data.datasets import Example
from ssa_core.data.textspans import TokenPosition, past_marks, token_positions, token_spans, word_spans
from ssa_core.model.tokenize import encode_examples, load_tokenizer

TEXT = "Unbelievably, the film's ending works."
PAIR = "Second part here."


def test_words_group_multi_piece_words_and_split_punctuation(tiny_encoder_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_encoder_dir)
    (encoded,) = encode_examples(tokenizer, [Example(0, 1, TEXT, PAIR, "x")], 64)
    n = len(encoded.input_ids)
    attention = [0.01 * i for i in range(n)]
    importance = [(7 * i % 11) / 10 for i in range(n)]
    texts = (TEXT, PAIR)
    tokens = token_spans(encoded.positions, texts, attention, importance)
    assert [t.text for t in tokens[:5]] == ["Un", "bel", "ie", "va", "bly"]
    for token, p in zip(tokens, encoded.positions, strict=True):
        assert token.text == texts[p.segment][token.start : token.end]
        assert token.attention == pytest.approx(attention[p.index])

    words = word_spans(encoded.positions, tokens, texts)
    assert [(w.text, w.segment) for w in words] == [
        ("Unbelievably", 0),
        (",", 0),
        ("the", 0),
        ("film", 0),
        ("'", 0),
        ("s", 0),
        ("ending", 0),
        ("works", 0),
        (".", 0),
        ("Second", 1),
        ("part", 1),
        ("here", 1),
        (".", 1),
    ]
    first = words[0]
    assert (first.start, first.end) == (0, 12)
    assert first.attention == pytest.approx(sum(attention[1:6]))
    assert first.importance == pytest.approx(max(importance[1:6]))
    for word in words:
        assert word.text == texts[word.segment][word.start : word.end]
    assert sum(w.attention or 0 for w in words) == pytest.approx(sum(t.attention or 0 for t in tokens))
    assert tokens[0].attention == pytest.approx(attention[1])  # grouping does not alter the token spans


def test_same_word_index_in_two_segments_gives_two_words() -> None:
    positions = [TokenPosition(1, 0, 0, 0, 3), TokenPosition(3, 1, 0, 0, 2), TokenPosition(4, 1, 0, 2, 4)]
    texts = ("abc", "wxyz")
    tokens = token_spans(positions, texts, None, [0.0, 0.2, 0.9, 0.4, 0.3])
    words = word_spans(positions, tokens, texts)
    assert [(w.text, w.segment, w.attention, w.importance) for w in words] == [
        ("abc", 0, None, 0.2),
        ("wxyz", 1, None, 0.4),
    ]


def test_token_positions_skip_special_tokens() -> None:
    offsets = [(0, 0), (0, 3), (4, 7), (0, 0), (0, 2), (0, 0)]
    word_ids = [None, 0, 1, None, 0, None]
    sequence_ids = [None, 0, 0, None, 1, None]
    positions = token_positions(offsets, word_ids, sequence_ids)
    assert [(p.index, p.segment, p.word, p.start, p.end) for p in positions] == [
        (1, 0, 0, 0, 3),
        (2, 0, 1, 4, 7),
        (4, 1, 0, 0, 2),
    ]


def test_a_combining_mark_after_a_word_belongs_to_its_last_token() -> None:
    text = "cafe\u0301 ok\u0301\u0323"  # the accent-stripping tokenizer's offsets: cafe [0,4), ok [6,8)
    positions = token_positions([(0, 0), (0, 4), (6, 8), (0, 0)], [None, 0, 1, None], [None, 0, 0, None], (text,))
    assert [(p.start, p.end) for p in positions] == [(0, 5), (6, 10)]
    tokens = token_spans(positions, (text,), None, None)
    assert [w.text for w in word_spans(positions, tokens, (text,))] == ["cafe\u0301", "ok\u0301\u0323"]
    assert past_marks("a\u0301", 0) == 0 and past_marks("a\u0301", 2) == 2  # never before the start, never past the end
