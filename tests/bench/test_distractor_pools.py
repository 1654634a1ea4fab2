"""The five distractor clause pools (issue 24): format, sizes, polarity balance, and that no two pools (nor a pool
and bench/misleading.py's test templates) share a topic, a content-word 3-gram or a (subject, adjective) pair."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bench.misleading import TOWARD_NEGATIVE, TOWARD_POSITIVE

REPO = Path(__file__).resolve().parents[2]
POOLS = {
    "training": REPO / "ssa_core/samples/distractors/offtopic-training.json",
    "report": REPO / "ssa_core/samples/distractors/offtopic-report.json",
    "selection": REPO / "bench/data/robustness/pools/selection.json",
    "eval-a": REPO / "bench/data/robustness/pools/eval-a.json",
    "eval-b": REPO / "bench/data/robustness/pools/eval-b.json",
}
ROLES = {"training": "training", "report": "report", "selection": "selection", "eval-a": "evaluation",
         "eval-b": "evaluation"}
MIN_SIZE = {"training": 400, "report": 150, "selection": 150, "eval-a": 150, "eval-b": 150}
MIN_TOPICS = {"training": 12, "report": 5, "selection": 5, "eval-a": 5, "eval-b": 5}

_STOPWORD_TEXT = """
a an the this that these those it its it's i i'm i've me my we our us you your he she his her they them their
is are was were be been being am has have had do does did will would can could should must may might shall
and or but so yet though although if then than as at by for from in into of on to with about over after before
up down out off again once just only very quite really too also even still ever never not no nor all any each
every some such what who whom which when where why how there here because while until
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# the things bench/misleading.py's clauses talk about: no pool may use them as a subject
MISLEADING_SUBJECTS = frozenset({"popcorn", "seats", "weather", "friends", "people", "neighbours", "parking",
                                 "staff", "cinema", "theater", "drive", "sunset", "traffic", "coffee"})


def load(name: str) -> dict:
    return json.loads(POOLS[name].read_text(encoding="utf-8"))


DATA = {name: load(name) for name in POOLS}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def content_trigrams(text: str) -> set[tuple[str, ...]]:
    content = [w for w in words(text) if w not in STOPWORDS]
    return {tuple(content[i : i + 3]) for i in range(len(content) - 2)}


def misleading_clauses() -> list[str]:
    return [part.strip(" ()") for template in TOWARD_POSITIVE + TOWARD_NEGATIVE for part in template.split("{s}")
            if part.strip(" ()")]


@pytest.mark.parametrize("name", POOLS)
def test_pool_format(name: str) -> None:
    pool = DATA[name]
    assert set(pool) == {"name", "role", "source", "licence", "topics", "entries"}
    assert pool["role"] == ROLES[name] and pool["source"].strip() and pool["licence"].strip()
    assert isinstance(pool["name"], str) and pool["name"]
    assert len(set(pool["topics"])) == len(pool["topics"]) >= MIN_TOPICS[name]
    for entry in pool["entries"]:
        assert set(entry) == {"text", "topic", "polarity", "subject", "adjective"}, entry
        assert entry["polarity"] in {"positive", "negative"}
        assert entry["topic"] in pool["topics"]
        assert entry["text"].strip() == entry["text"] and 0 < len(entry["text"]) <= 300
        assert entry["subject"].lower() in entry["text"].lower()
        assert entry["adjective"].lower() in entry["text"].lower()
    assert {e["topic"] for e in pool["entries"]} == set(pool["topics"])  # every listed topic is used
    texts = [e["text"] for e in pool["entries"]]
    assert len(set(texts)) == len(texts), "duplicate texts"


@pytest.mark.parametrize("name", POOLS)
def test_pool_size_and_polarity_balance(name: str) -> None:
    entries = DATA[name]["entries"]
    assert len(entries) >= MIN_SIZE[name]
    counts = Counter(e["polarity"] for e in entries)
    assert min(counts["positive"], counts["negative"]) >= 0.4 * len(entries), counts


@pytest.mark.parametrize(("one", "other"), list(itertools.combinations(POOLS, 2)))
def test_pools_are_disjoint(one: str, other: str) -> None:
    a, b = DATA[one], DATA[other]
    assert not {t.lower() for t in a["topics"]} & {t.lower() for t in b["topics"]}
    pairs_a = {(e["subject"].lower(), e["adjective"].lower()) for e in a["entries"]}
    pairs_b = {(e["subject"].lower(), e["adjective"].lower()) for e in b["entries"]}
    assert not pairs_a & pairs_b, sorted(pairs_a & pairs_b)[:5]
    grams_a = set().union(*(content_trigrams(e["text"]) for e in a["entries"]))
    grams_b = set().union(*(content_trigrams(e["text"]) for e in b["entries"]))
    assert not grams_a & grams_b, sorted(grams_a & grams_b)[:5]
    assert not {e["text"].lower() for e in a["entries"]} & {e["text"].lower() for e in b["entries"]}


@pytest.mark.parametrize("name", POOLS)
def test_no_pool_repeats_the_misleading_test_templates(name: str) -> None:
    clauses = misleading_clauses()
    assert len(clauses) == 12
    grams = set().union(*(content_trigrams(c) for c in clauses))
    for entry in DATA[name]["entries"]:
        text = entry["text"].lower()
        assert not any(c.lower().rstrip(".,;") in text for c in clauses), entry["text"]
        assert not content_trigrams(entry["text"]) & grams, entry["text"]
        assert not set(words(entry["subject"])) & MISLEADING_SUBJECTS, entry["subject"]
    assert not {t.lower() for t in DATA[name]["topics"]} & MISLEADING_SUBJECTS


def test_content_trigrams_drop_stopwords_and_punctuation() -> None:
    assert content_trigrams("The popcorn was wonderful, and the seats were lovely!") == {
        ("popcorn", "wonderful", "seats"), ("wonderful", "seats", "lovely")}
    assert content_trigrams("The X was Y.") == set()


def test_eval_b_has_varied_shapes_and_is_not_one_plain_shape() -> None:
    texts = [e["text"] for e in DATA["eval-b"]["entries"]]
    shapes = {
        "question": sum(t.endswith("?") for t in texts),
        "exclamation": sum(t.endswith("!") for t in texts),
        "first person": sum(t.startswith(("I ", "My ", "We ")) for t in texts),
        "long": sum(len(t.split()) > 15 for t in texts),
    }
    assert sum(count > 0 for count in shapes.values()) >= 4, shapes
    plain = re.compile(r"^The [\w' -]+ (?:was|is) \w+\.$")
    assert not any(plain.match(t) for t in texts)
    # every eval-b entry has at least one of the shapes
    assert all(t.endswith(("?", "!")) or t.startswith(("I ", "My ", "We ")) or len(t.split()) > 15 for t in texts)


def test_eval_a_and_eval_b_differ_in_syntax() -> None:
    def skeleton(entry: dict) -> str:
        return entry["text"].replace(entry["subject"], "S").replace(entry["adjective"], "A")

    shapes_a = {skeleton(e) for e in DATA["eval-a"]["entries"]}
    shapes_b = {skeleton(e) for e in DATA["eval-b"]["entries"]}
    assert not shapes_a & shapes_b and len(shapes_b) >= 6


def test_the_shipped_pools_load_with_load_pool() -> None:
    from ssa_core.data.distractors import load_pool, shipped_pool

    for role in ("training", "report"):
        pool = shipped_pool(role)  # type: ignore[arg-type]
        assert pool.role == role and len(pool.entries) == len(DATA[role]["entries"])
    for name in ("selection", "eval-a", "eval-b"):
        assert len(load_pool(POOLS[name]).entries) == len(DATA[name]["entries"])


def test_the_committed_pools_are_what_the_script_writes() -> None:
    from bench.build_distractor_pools import POOLS as SPECS
    from bench.build_distractor_pools import build

    assert [REPO / spec.path for spec in SPECS] == list(POOLS.values())
    for spec, name in zip(SPECS, POOLS, strict=True):
        assert build(spec) == DATA[name], name
