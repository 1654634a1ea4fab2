"""A misleading-words test set for sentiment: each sentence gets an irrelevant clause (about the popcorn, the
weather, the drive home ...) whose wording pulls toward the opposite label. The film's verdict is unchanged, so
the gold label stays; a model that counts sentiment words instead of reading what they describe gets fooled.

    python bench/misleading.py ../shared/data/movie-sentiment/test.jsonl \
        bench/data/movie-sentiment-misleading-test.jsonl
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

# Clauses that sound positive, added to negative sentences; and the reverse. {s} is the original sentence.
TOWARD_POSITIVE = (
    "The popcorn was wonderful and the seats were delightfully comfortable, but {s}",
    "{s} The weather outside afterwards was beautiful and lovely, though.",
    "Although my friends are brilliant, charming people, {s}",
    "{s} (The parking was easy and the staff at the cinema were fantastic.)",
    "My drive to the theater was a joy and the sunset was gorgeous; still, {s}",
    "{s} At least the coffee I had before was excellent and delicious.",
)
TOWARD_NEGATIVE = (
    "The popcorn was stale and the seats were horribly uncomfortable, but {s}",
    "{s} The weather outside afterwards was miserable and ugly, though.",
    "Although my neighbours are rude, boring people, {s}",
    "{s} (The parking was a nightmare and the staff at the cinema were awful.)",
    "My drive to the theater was dreadful and the traffic was terrible; still, {s}",
    "{s} The coffee I had before was bitter and disgusting, by the way.",
)


def mislead(text: str, label: str, index: int) -> str:
    """The sentence with one clause pulling toward the other polarity (template chosen by position)."""
    templates = TOWARD_NEGATIVE if label == "positive" else TOWARD_POSITIVE
    template = templates[index % len(templates)]
    if not template.startswith("{s}") and len(text) > 1 and text[1].islower():
        text = text[0].lower() + text[1:]  # "It's ..." -> "... but it's ...", but keep "TUCK EVERLASTING"
    return template.format(s=text)


@dataclass(frozen=True)
class MisleadingRow:
    text: str
    label: str
    clause: tuple[int, int]  # character span of the inserted clause in text


def mislead_with_span(text: str, label: str, index: int) -> MisleadingRow:
    """`mislead`, plus where the inserted clause sits (the template's text around {s}, without edge spaces)."""
    templates = TOWARD_NEGATIVE if label == "positive" else TOWARD_POSITIVE
    prefix, suffix = templates[index % len(templates)].split("{s}")
    full = mislead(text, label, index)
    if prefix:
        start, end = 0, len(prefix.rstrip())
    else:
        start, end = len(full) - len(suffix.lstrip()), len(full)
    return MisleadingRow(full, label, (start, end))


def build_with_spans(source: Path) -> list[MisleadingRow]:
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    return [mislead_with_span(r["text"], r["label"], i) for i, r in enumerate(rows)]


def build(source: Path) -> list[dict[str, str]]:
    return [{"text": r.text, "label": r.label} for r in build_with_spans(source)]


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(json.dumps(r) + "\n" for r in build(src)))
    print(f"wrote {dst}")
