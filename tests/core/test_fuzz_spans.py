"""Fuzzing the span mapper (hypothesis): the character spans of wordpieces and words (ssa_core.data.textspans, from the
tokenizer's offsets) lie within their text, keep the text's order, and cover every visible character, combining
marks included (a tokenizer that strips accents would otherwise leave them outside every word).

"Visible" is a letter, number, punctuation or symbol (Unicode L, N, P, S), and a combining mark (M) on a visible
base; control and format characters (C*), which the tokenizer deletes, and marks on nothing are not required to be
covered.
The seed corpus (tests/fuzz_corpus/spans/) is replayed on every run; SSA_FUZZ_EXAMPLES bounds the rest."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssa_core.data.datasets import Example
from ssa_core.data.textspans import token_spans, word_spans
from ssa_core.model.tokenize import encode_examples, load_tokenizer

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus" / "spans"
SEEDS = sorted(CORPUS.iterdir())
EXAMPLES = int(os.environ.get("SSA_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MAX_LENGTH = 512


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder_dir: Path) -> Any:
    return load_tokenizer(tiny_encoder_dir)


def must_cover(text: str, index: int) -> bool:
    """A visible character; a combining mark only when its base (the character before its run of marks) is one:
    a mark on nothing (text start, whitespace, a control character) has no word to join, and the tokenizer drops
    it."""
    category = unicodedata.category(text[index])
    if category[0] != "M":
        return category[0] in "LNPS"
    base = index
    while base >= 0 and unicodedata.category(text[base])[0] == "M":
        base -= 1
    return base >= 0 and must_cover(text, base)


def check(tokenizer: Any, text: str, pair: str | None) -> None:
    (encoded,) = encode_examples(tokenizer, [Example(0, 1, text, pair, "x")], MAX_LENGTH)
    texts = (text, pair or "")
    tokens = token_spans(encoded.positions, texts, None, None)
    words = word_spans(encoded.positions, tokens, texts)
    for segment, source in enumerate(texts):
        spans = [w for w in words if w.segment == segment]
        for span in spans:
            assert 0 <= span.start <= span.end <= len(source), (span, source)
            assert span.text == source[span.start:span.end]
        starts = [s.start for s in spans]
        assert starts == sorted(starts), "words keep the text's order"
        pieces = [t for t in tokens if t.segment == segment]
        assert [t.start for t in pieces] == sorted(t.start for t in pieces), "wordpieces keep the text's order"
        if len(encoded.input_ids) >= MAX_LENGTH:
            continue  # truncated: the tail is legitimately uncovered
        covered = set()
        for span in spans:
            covered.update(range(span.start, span.end))
        missing = [(i, source[i], unicodedata.name(source[i], "?")) for i in range(len(source))
                   if must_cover(source, i) and i not in covered]
        assert not missing, (source, missing)


@pytest.mark.parametrize("seed", SEEDS, ids=[seed.name for seed in SEEDS])
def test_seed_texts_map_to_spans_within_in_order_and_covering(seed: Path, tokenizer: Any) -> None:
    text = seed.read_text(encoding="utf-8")
    check(tokenizer, text, None)
    check(tokenizer, "pair first", text)


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
MARKY = st.lists(st.sampled_from(["a", "e", "n", " ", "\u0301", "\u0308", "\u20e3", "\u093f", "\u0928", ".", "'",
                                  "\u00a0", "\ufb01", "\u200d", "\U0001F468", "1"]), max_size=30).map("".join)


@FUZZ
@given(text=TEXT, pair=st.none() | TEXT)
def test_arbitrary_texts_map_to_spans_within_in_order_and_covering(text: str, pair: str | None,
                                                                    tokenizer: Any) -> None:
    check(tokenizer, text, pair)


@FUZZ
@given(text=MARKY)
def test_texts_dense_in_combining_marks_are_covered(text: str, tokenizer: Any) -> None:
    check(tokenizer, text, None)
