"""Character spans of wordpieces and whole words, and per-word aggregation of token scores. Torch-free."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Span:
    """A wordpiece or a word: its text, character span into the input of `segment`, and its SSA scores."""

    text: str
    start: int
    end: int
    segment: int
    attention: float | None
    importance: float | None
    # leave-one-word-out occlusion (explain="occlusion"): the drop of the predicted class's probability when the word
    # is deleted; a word's wordpieces share it evenly, and a word carries the whole drop
    occlusion: float | None = None


@dataclass(frozen=True)
class TokenPosition:
    """Where a non-special wordpiece sits: segment (0 text, 1 text_pair), word index, character span."""

    index: int  # position in the encoded sequence
    segment: int
    word: int
    start: int
    end: int


def token_positions(
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None],
    sequence_ids: Sequence[int | None],
    texts: Sequence[str] | None = None,
) -> list[TokenPosition]:
    """The real (non-special) wordpieces of one encoding, in order. With the encoded `texts` (text, text_pair), a
    span also covers the combining marks that follow it: a tokenizer that strips accents maps "cafe\u0301" to
    "cafe" at [0, 4), which would leave the accent outside every token and word."""
    positions = []
    for index, (segment, word) in enumerate(zip(sequence_ids, word_ids, strict=True)):
        if segment is None or word is None:
            continue
        start, end = offsets[index]
        if texts is not None and int(segment) < len(texts):
            end = past_marks(texts[int(segment)], int(end))
        positions.append(TokenPosition(index, int(segment), int(word), int(start), int(end)))
    return positions


def past_marks(text: str, end: int) -> int:
    """`end` moved past the combining marks (Unicode categories Mn, Mc, Me) that start at it."""
    while 0 < end < len(text) and unicodedata.category(text[end]).startswith("M"):
        end += 1
    return end


def word_groups(positions: Sequence[TokenPosition]) -> list[list[int]]:
    """Sequence positions of each word's wordpieces (per segment), in order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for p in positions:
        groups.setdefault((p.segment, p.word), []).append(p.index)
    return list(groups.values())


def token_spans(
    positions: Sequence[TokenPosition],
    texts: Sequence[str],
    attention: Sequence[float] | None,
    importance: Sequence[float] | None,
    occlusion: Sequence[float] | None = None,
) -> list[Span]:
    """One Span per wordpiece; `attention`/`importance`/`occlusion` are indexed by sequence position."""
    return [
        Span(
            text=texts[p.segment][p.start : p.end],
            start=p.start,
            end=p.end,
            segment=p.segment,
            attention=None if attention is None else float(attention[p.index]),
            importance=None if importance is None else float(importance[p.index]),
            occlusion=None if occlusion is None else float(occlusion[p.index]),
        )
        for p in positions
    ]


def word_spans(positions: Sequence[TokenPosition], tokens: Sequence[Span], texts: Sequence[str]) -> list[Span]:
    """Group wordpieces into words: attention summed, importance maxed, span from first start to last end."""
    words: list[Span] = []
    previous: tuple[int, int] | None = None
    for position, token in zip(positions, tokens, strict=True):
        key = (position.segment, position.word)
        if key != previous:
            words.append(Span(token.text, token.start, token.end, token.segment, token.attention, token.importance,
                              token.occlusion))
            previous = key
            continue
        word = words[-1]
        word.end = max(word.end, token.end)
        word.text = texts[word.segment][word.start : word.end]
        if word.attention is not None and token.attention is not None:
            word.attention += token.attention
        if word.importance is not None and token.importance is not None:
            word.importance = max(word.importance, token.importance)
        if word.occlusion is not None and token.occlusion is not None:
            word.occlusion += token.occlusion
    return words
