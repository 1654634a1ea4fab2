"""The frozen robustness sets in bench/data/robustness/ (bench/build_robustness_sets.py): every dev/test row once,
gold labels unchanged, a clause of the opposite polarity (movie) or a fragment of another class (trec6), positions
cycling, spans right; and the script reproduces them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ssa_core.data.distractors import POSITIONS, inline_form

REPO = Path(__file__).resolve().parents[2]
SETS = REPO / "bench/data/robustness"
DATA = Path("/work/shared/data")
FIELDS = {"id", "text", "label", "original", "clause", "position", "pool", "start", "end"}
MOVIE = {"movie-selection.jsonl": ("dev", "selection"), "movie-eval-a.jsonl": ("test", "eval-a"),
         "movie-eval-b.jsonl": ("test", "eval-b")}
TREC = {"trec6-selection-fragments.jsonl": ("dev", "trec6-dev-fragments"),
        "trec6-eval-fragments.jsonl": ("test", "trec6-test-fragments")}
SIZES = {"movie-selection.jsonl": 1000, "movie-eval-a.jsonl": 1070, "movie-eval-b.jsonl": 1070,
         "trec6-selection-fragments.jsonl": 500, "trec6-eval-fragments.jsonl": 581}
OPPOSITE = {"positive": "negative", "negative": "positive"}


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SETS / name).read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", SIZES)
def test_rows_spans_and_positions(name: str) -> None:
    data = rows(name)
    assert len(data) == SIZES[name] and [r["id"] for r in data] == list(range(len(data)))
    for r in data:
        assert set(r) == FIELDS
        assert r["text"][r["start"] : r["end"]] == r["clause"]
        assert r["text"][: r["start"]] + r["text"][r["end"] :] != r["text"]
        assert r["position"] == POSITIONS[r["id"] % 3] or (r["position"] == "end" and r["id"] % 3 == 1)
    counts = Counter(r["position"] for r in data)
    assert min(counts.values()) >= 0.3 * len(data)


@pytest.mark.parametrize("name", MOVIE)
def test_movie_sets_take_opposite_polarity_clauses_of_their_pool(name: str) -> None:
    pool_name = MOVIE[name][1]
    pool = json.loads((SETS / "pools" / f"{pool_name}.json").read_text(encoding="utf-8"))
    polarity = {e["text"]: e["polarity"] for e in pool["entries"]}
    polarity |= {inline_form(e["text"]): e["polarity"] for e in pool["entries"]}
    data = rows(name)
    for r in data:
        assert r["pool"] == pool_name and polarity[r["clause"]] == OPPOSITE[r["label"]], r
    used = Counter(r["clause"] for r in data if r["position"] != "middle")
    assert max(used.values()) <= 2 * len(data) / len(pool["entries"]) + 2  # clauses used about evenly


@pytest.mark.parametrize("name", TREC)
def test_trec_fragments_come_from_another_class_of_the_same_split(name: str) -> None:
    data = rows(name)
    by_text: dict[str, set[str]] = {}
    for r in data:
        by_text.setdefault(r["original"], set()).add(r["label"])
    for r in data:
        fragment = r["clause"]
        assert 3 <= len(fragment.split()) <= 8 and r["pool"] == TREC[name][1]
        sources = {label for text, labels in by_text.items() for label in labels
                   if f" {fragment.lower()}" in f" {text.lower()}"}  # in the middle, a final "." may be gone
        assert sources - {r["label"]}, r


@pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} (the source splits) is not here")
def test_the_sets_are_every_source_row_once_and_the_script_reproduces_them() -> None:
    from bench.build_robustness_sets import build

    built = build(DATA)
    assert set(built) == set(SIZES)
    for name, made in built.items():
        task = "movie-sentiment" if name.startswith("movie") else "trec6"
        split = (MOVIE | TREC)[name][0]
        source = [json.loads(line) for line in (DATA / task / f"{split}.jsonl").read_text().splitlines()]
        assert [(r["original"], r["label"]) for r in made] == [(s["text"], s["label"]) for s in source]
        assert made == rows(name), name
